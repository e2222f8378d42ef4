//! The engine seam and its one implementation: whisper.cpp through `whisper-rs`. Words
//! are the tokens between spaces; their start times come from whisper.cpp's DTW token
//! timestamps over the model's alignment heads (`config.json`'s `alignment_heads`),
//! else from its token timestamps. Decoding: greedy with whisper.cpp's temperature
//! fallback, faster-whisper's non-speech token suppression, English for `.en` models.
//! Audio in: 16 kHz mono `f32`.

use std::path::PathBuf;

use whisper_rs::{
    DtwAhead, DtwMode, DtwParameters, FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters,
};

use super::{Segment, SpeechError, SpeechModel, Word};

/// Anything that turns 16 kHz mono samples into timed segments with words.
pub trait Engine: Send + Sync {
    /// The segments of `samples` (16 kHz mono), times in seconds from the first sample.
    fn transcribe(&self, samples: &[f32]) -> Result<Vec<Segment>, SpeechError>;
    /// What to call it in logs and reports.
    fn describe(&self) -> String;
}

/// How to run the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// CPU threads (0: all cores).
    pub threads: usize,
    /// Beam width (1: greedy, the default: on the test footage whisper.cpp's greedy
    /// decoding gave faster-whisper's own transcript word for word, while its beam of 5
    /// lost the last sentence after a long segment).
    pub beam: usize,
    /// The spoken language for multilingual models (None: detected).
    pub language: Option<String>,
    /// Run on the GPU when the build has CUDA.
    pub gpu: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            threads: 0,
            beam: 1,
            language: None,
            gpu: cfg!(feature = "speech-cuda"),
        }
    }
}

/// Whisper on whisper.cpp.
pub struct Whisper {
    ctx: WhisperContext,
    model: SpeechModel,
    settings: Settings,
    /// The alignment heads handed to whisper.cpp, which keeps a pointer to them.
    _heads: Vec<DtwAhead>,
}

impl Whisper {
    /// Loads `model`.
    pub fn load(model: &SpeechModel, settings: Settings) -> Result<Self, SpeechError> {
        whisper_rs::install_logging_hooks();
        let heads: Vec<DtwAhead> = model
            .info
            .alignment_heads
            .iter()
            .map(|&(l, h)| DtwAhead {
                n_text_layer: l,
                n_head: h,
            })
            .collect();
        let mut p = WhisperContextParameters::default();
        p.use_gpu(settings.gpu);
        if !heads.is_empty() {
            p.dtw_parameters(DtwParameters {
                mode: DtwMode::Custom { aheads: &heads },
                ..Default::default()
            });
        }
        let path = model.file.to_str().ok_or_else(|| SpeechError::NotAModel {
            dir: model.file.clone(),
            reason: "a path that is not UTF-8".into(),
        })?;
        let ctx = WhisperContext::new_with_params(path, p).map_err(|e| SpeechError::NotAModel {
            dir: model.file.clone(),
            reason: format!("whisper.cpp cannot load it ({e})"),
        })?;
        Ok(Self {
            ctx,
            model: model.clone(),
            settings,
            _heads: heads,
        })
    }

    fn fail(&self, e: impl std::fmt::Display) -> SpeechError {
        SpeechError::Engine {
            path: self.model.file.clone(),
            reason: e.to_string(),
        }
    }

    /// The model's file.
    pub fn file(&self) -> &PathBuf {
        &self.model.file
    }

    fn params(&self) -> FullParams<'_, '_> {
        let strategy = match self.settings.beam {
            0 | 1 => SamplingStrategy::Greedy { best_of: 1 },
            b => SamplingStrategy::BeamSearch {
                beam_size: b as i32,
                patience: -1.0,
            },
        };
        let mut p = FullParams::new(strategy);
        let threads = match self.settings.threads {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            t => t,
        };
        p.set_n_threads(threads as i32);
        let lang = if self.ctx.is_multilingual() {
            self.settings.language.as_deref()
        } else {
            Some("en")
        };
        p.set_language(lang.or(Some("auto")));
        p.set_token_timestamps(true);
        // faster-whisper's default `suppress_tokens=[-1]`: no symbols or music notes.
        p.set_suppress_nst(true);
        for quiet in [
            FullParams::set_print_progress,
            FullParams::set_print_realtime,
            FullParams::set_print_timestamps,
        ] {
            quiet(&mut p, false);
        }
        p.set_print_special(false);
        p
    }
}

impl Engine for Whisper {
    fn transcribe(&self, samples: &[f32]) -> Result<Vec<Segment>, SpeechError> {
        if samples.len() < super::SAMPLE_RATE as usize / 10 {
            return Ok(Vec::new());
        }
        let mut state = self.ctx.create_state().map_err(|e| self.fail(e))?;
        state.full(self.params(), samples).map_err(|e| self.fail(e))?;
        let eot = self.ctx.token_eot();
        let mut out = Vec::new();
        for seg in state.as_iter() {
            let (s0, s1) = (seg.start_timestamp() as f64 / 100.0, seg.end_timestamp() as f64 / 100.0);
            let mut toks: Vec<(String, i64, i64, i64)> = Vec::new();
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else { continue };
                if tok.token_id() >= eot {
                    continue;
                }
                let Ok(text) = tok.to_str_lossy() else { continue };
                let d = tok.token_data();
                toks.push((text.into_owned(), d.t_dtw, d.t0, d.t1));
            }
            let mut words = words_of(&toks, s0, s1);
            for w in &mut words {
                w.text = w.text.trim().to_string();
            }
            words.retain(|w| !w.text.is_empty());
            let text = seg.to_str_lossy().map_err(|e| self.fail(e))?.trim().to_string();
            // Whisper's segment times are coarse (whole seconds at a window's edge):
            // the segment spans its words.
            let (start, end) = match (words.first(), words.last()) {
                (Some(a), Some(b)) => (a.start, b.end.max(a.start)),
                _ => (s0, s1),
            };
            if !text.is_empty() {
                out.push(Segment {
                    start,
                    end,
                    text,
                    words,
                });
            }
        }
        Ok(out)
    }

    fn describe(&self) -> String {
        format!("{} (whisper.cpp)", self.model.info.name)
    }
}

/// A segment's text tokens `(text, t_dtw, t0, t1)` (centiseconds) as words. whisper.cpp
/// gives each token the time its DTW path moves on to the next token: where the token
/// ends. So a token starts where the one before it ended; the segment's first token is
/// taken to last as long as the second. Without DTW times (a model file without
/// alignment heads), whisper.cpp's token timestamps `t0`, `t1`.
fn words_of(toks: &[(String, i64, i64, i64)], s0: f64, s1: f64) -> Vec<Word> {
    let cs = |t: i64| (t as f64 / 100.0).clamp(s0, s1);
    let dtw = toks.iter().all(|t| t.1 >= 0);
    let span = |k: usize| -> (f64, f64) {
        if !dtw {
            return (cs(toks[k].2), cs(toks[k].3.max(toks[k].2)));
        }
        let end = cs(toks[k].1);
        let start = match k {
            0 => {
                let next = toks.get(1).map_or(0.0, |t| cs(t.1) - end);
                (end - next.max(0.0)).max(s0)
            }
            _ => cs(toks[k - 1].1),
        };
        (start.min(end), end)
    };
    let mut words: Vec<Word> = Vec::new();
    for (k, (text, ..)) in toks.iter().enumerate() {
        let (start, end) = span(k);
        match words.last_mut() {
            Some(w) if !text.starts_with(' ') => {
                w.text.push_str(text);
                w.end = w.end.max(end);
            }
            _ => words.push(Word {
                start,
                end,
                text: text.clone(),
            }),
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_starts_where_the_one_before_it_ends() {
        let t = |s: &str, dtw: i64| (s.to_string(), dtw, 0, 0);
        let toks = [t(" The", 128), t(" budget", 162), t(" meet", 190), t("ings", 206)];
        let w = words_of(&toks, 0.0, 7.0);
        let got: Vec<(&str, f64, f64)> = w.iter().map(|w| (w.text.as_str(), w.start, w.end)).collect();
        assert_eq!(
            got,
            [(" The", 0.94, 1.28), (" budget", 1.28, 1.62), (" meetings", 1.62, 2.06)]
        );
    }
}
