//! Writing a whisper.cpp model file (the `ggml` format its loader reads) from a
//! CTranslate2 Whisper model: the hyper-parameters (from the variables' shapes and head
//! counts), the log-mel filter bank (librosa's Slaney mel filters, as OpenAI's
//! `mel_filters.npz` holds them), the vocabulary as raw bytes (CTranslate2 keeps GPT-2's
//! byte-to-unicode spelling), and every tensor under whisper.cpp's name. CTranslate2
//! fuses the query/key/value projections of self-attention into one linear (and
//! key/value of cross-attention); they are split here, and the key bias, which Whisper
//! does not have (CTranslate2 stores zeros), is dropped. Matrices stay half precision
//! (copied bit for bit from a float16 model); biases, norms, positional embeddings and the
//! convolution biases (as `[n, 1]`) are single precision, as whisper.cpp's own converter
//! writes them. Owns the mapping, not the reading (`ct2`) nor running (`engine`).

use std::io::Write;
use std::path::Path;

use super::SpeechError;
use super::ct2::{Ct2Model, DType, Var, f32_to_f16};

/// The `ggml` magic.
const MAGIC: u32 = 0x6767_6d6c;

/// A Whisper model's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dims {
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
}

impl Dims {
    /// English-only models have 51,864 tokens; multilingual ones more.
    pub fn english_only(&self) -> bool {
        self.n_vocab < 51865
    }
}

fn bad(reason: impl Into<String>) -> String {
    reason.into()
}

fn layers(m: &Ct2Model, prefix: &str) -> usize {
    (0..)
        .take_while(|i| m.get(&format!("{prefix}/layer_{i}/ffn/linear_0/weight")).is_some())
        .count()
}

/// The shape of the Whisper model `m`.
pub fn dims(m: &Ct2Model) -> Result<Dims, String> {
    if m.spec != "WhisperSpec" {
        return Err(bad(format!("it holds a CTranslate2 {} model, not Whisper", m.spec)));
    }
    let shape = |n: &str| {
        m.get(n)
            .map(|v| v.shape.clone())
            .ok_or_else(|| bad(format!("no variable {n}")))
    };
    let heads = |n: &str| {
        m.get(n)
            .and_then(Var::scalar)
            .map(|h| h as usize)
            .ok_or_else(|| bad(format!("no {n}")))
    };
    let emb = shape("decoder/embeddings/weight")?;
    let dpe = shape("decoder/position_encodings/encodings")?;
    let epe = shape("encoder/position_encodings/encodings")?;
    let conv1 = shape("encoder/conv1/weight")?;
    let d = Dims {
        n_vocab: emb[0],
        n_audio_ctx: epe[0],
        n_audio_state: epe[1],
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: layers(m, "encoder"),
        n_text_ctx: dpe[0],
        n_text_state: emb[1],
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: layers(m, "decoder"),
        n_mels: conv1[1],
    };
    if d.n_audio_layer == 0 || d.n_text_layer == 0 || d.n_audio_state != d.n_text_state {
        return Err(bad(format!("an unexpected Whisper shape {d:?}")));
    }
    Ok(d)
}

/// A tensor's values, as stored or as floats.
enum Values {
    /// Half-precision bytes, copied as they are.
    Half(Vec<u8>),
    Float(Vec<f32>),
}

/// Rows `rows` of the variable `name` (all when None), a quantised one scaled back.
fn values(m: &Ct2Model, name: &str, rows: Option<std::ops::Range<usize>>) -> Result<(Vec<usize>, Values), String> {
    let v = m.get(name).ok_or_else(|| bad(format!("no variable {name}")))?;
    let row_len: usize = v.shape.iter().skip(1).product::<usize>().max(1);
    let r = rows.unwrap_or(0..v.shape.first().copied().unwrap_or(1));
    let mut shape = v.shape.clone();
    if !shape.is_empty() {
        shape[0] = r.len();
    }
    if v.dtype == DType::F16 {
        let w = row_len * 2;
        return Ok((shape, Values::Half(v.data[r.start * w..r.end * w].to_vec())));
    }
    let all = v.to_f32();
    let mut out = all[r.start * row_len..r.end * row_len].to_vec();
    if let Some(scale) = m.get(&format!("{name}_scale")) {
        let s = scale.to_f32();
        for (i, row) in out.chunks_mut(row_len).enumerate() {
            let k = s.get(r.start + i).or(s.first()).copied().unwrap_or(1.0);
            row.iter_mut().for_each(|x| *x /= k);
        }
    }
    Ok((shape, Values::Float(out)))
}

/// Writes one tensor: half precision when `half`, else single.
fn tensor(w: &mut impl Write, name: &str, shape: &[usize], vals: Values, half: bool) -> std::io::Result<()> {
    let ftype = if half { 1 } else { 0 };
    let i = |x: usize| (x as i32).to_le_bytes();
    w.write_all(&i(shape.len()))?;
    w.write_all(&i(name.len()))?;
    w.write_all(&i(ftype))?;
    for d in shape.iter().rev() {
        w.write_all(&i(*d))?;
    }
    w.write_all(name.as_bytes())?;
    match (vals, half) {
        (Values::Half(b), true) => w.write_all(&b),
        (Values::Half(b), false) => {
            let f: Vec<u8> = b
                .chunks_exact(2)
                .flat_map(|c| super::ct2::f16_to_f32(u16::from_le_bytes([c[0], c[1]])).to_le_bytes())
                .collect();
            w.write_all(&f)
        }
        (Values::Float(f), true) => {
            w.write_all(&f.iter().flat_map(|x| f32_to_f16(*x).to_le_bytes()).collect::<Vec<_>>())
        }
        (Values::Float(f), false) => w.write_all(&f.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>()),
    }
}

/// One whisper.cpp tensor from CTranslate2: (ggml name, ct2 name, which third or half
/// of a fused projection, single precision?).
type Step = (String, String, Option<(usize, usize)>, bool);

/// The tensors of one transformer block (`side` encoder or decoder, layer `i`):
/// norms, MLP, self-attention with its fused query/key/value split (no key bias).
fn block(p: &mut Vec<Step>, side: &str, i: usize) {
    let (g, c) = (format!("{side}.blocks.{i}"), format!("{side}/layer_{i}"));
    for (gn, cn) in [("attn_ln", "self_attention/layer_norm"), ("mlp_ln", "ffn/layer_norm")] {
        p.push((format!("{g}.{gn}.weight"), format!("{c}/{cn}/gamma"), None, true));
        p.push((format!("{g}.{gn}.bias"), format!("{c}/{cn}/beta"), None, true));
    }
    for (gn, cn) in [
        ("mlp.0", "ffn/linear_0"),
        ("mlp.2", "ffn/linear_1"),
        ("attn.out", "self_attention/linear_1"),
    ] {
        p.push((format!("{g}.{gn}.weight"), format!("{c}/{cn}/weight"), None, false));
        p.push((format!("{g}.{gn}.bias"), format!("{c}/{cn}/bias"), None, true));
    }
    let qkv = format!("{c}/self_attention/linear_0");
    for (k, n) in [(0, "query"), (1, "key"), (2, "value")] {
        p.push((
            format!("{g}.attn.{n}.weight"),
            format!("{qkv}/weight"),
            Some((k, 3)),
            false,
        ));
        if k != 1 {
            p.push((format!("{g}.attn.{n}.bias"), format!("{qkv}/bias"), Some((k, 3)), true));
        }
    }
}

/// A decoder layer's cross-attention: the query, the fused key/value split (no key bias).
fn cross_attention(p: &mut Vec<Step>, i: usize) {
    let (g, c) = (
        format!("decoder.blocks.{i}.cross_attn"),
        format!("decoder/layer_{i}/attention"),
    );
    p.push((format!("{g}_ln.weight"), format!("{c}/layer_norm/gamma"), None, true));
    p.push((format!("{g}_ln.bias"), format!("{c}/layer_norm/beta"), None, true));
    p.push((format!("{g}.query.weight"), format!("{c}/linear_0/weight"), None, false));
    p.push((format!("{g}.query.bias"), format!("{c}/linear_0/bias"), None, true));
    p.push((
        format!("{g}.key.weight"),
        format!("{c}/linear_1/weight"),
        Some((0, 2)),
        false,
    ));
    p.push((
        format!("{g}.value.weight"),
        format!("{c}/linear_1/weight"),
        Some((1, 2)),
        false,
    ));
    p.push((
        format!("{g}.value.bias"),
        format!("{c}/linear_1/bias"),
        Some((1, 2)),
        true,
    ));
    p.push((format!("{g}.out.weight"), format!("{c}/linear_2/weight"), None, false));
    p.push((format!("{g}.out.bias"), format!("{c}/linear_2/bias"), None, true));
}

/// Every whisper.cpp tensor of a model of shape `d`, from its CTranslate2 variables.
fn plan(d: &Dims) -> Vec<Step> {
    let mut p: Vec<Step> = [
        ("encoder.conv1.weight", "encoder/conv1/weight", false),
        ("encoder.conv1.bias", "encoder/conv1/bias", true),
        ("encoder.conv2.weight", "encoder/conv2/weight", false),
        ("encoder.conv2.bias", "encoder/conv2/bias", true),
        (
            "encoder.positional_embedding",
            "encoder/position_encodings/encodings",
            true,
        ),
        ("encoder.ln_post.weight", "encoder/layer_norm/gamma", true),
        ("encoder.ln_post.bias", "encoder/layer_norm/beta", true),
        ("decoder.token_embedding.weight", "decoder/embeddings/weight", false),
        (
            "decoder.positional_embedding",
            "decoder/position_encodings/encodings",
            true,
        ),
        ("decoder.ln.weight", "decoder/layer_norm/gamma", true),
        ("decoder.ln.bias", "decoder/layer_norm/beta", true),
    ]
    .into_iter()
    .map(|(g, c, f)| (g.to_string(), c.to_string(), None, f))
    .collect();
    for i in 0..d.n_audio_layer {
        block(&mut p, "encoder", i);
    }
    for i in 0..d.n_text_layer {
        block(&mut p, "decoder", i);
        cross_attention(&mut p, i);
    }
    p
}

/// Writes the whisper.cpp file for model `m` with vocabulary `vocab` (CTranslate2's
/// spelling) to `out`. Returns the model's shape.
pub fn write(m: &Ct2Model, vocab: &[String], out: &Path) -> Result<Dims, SpeechError> {
    let d = dims(m).map_err(|reason| SpeechError::NotAModel {
        dir: out.to_path_buf(),
        reason,
    })?;
    let fail = |reason: String| SpeechError::Convert {
        path: out.to_path_buf(),
        reason,
    };
    let io = |e: std::io::Error| fail(e.to_string());
    let tokens = raw_tokens(vocab).map_err(fail)?;
    let mut w = std::io::BufWriter::new(std::fs::File::create(out).map_err(io)?);
    let i = |x: usize| (x as i32).to_le_bytes();
    w.write_all(&MAGIC.to_le_bytes()).map_err(io)?;
    for x in [
        d.n_vocab,
        d.n_audio_ctx,
        d.n_audio_state,
        d.n_audio_head,
        d.n_audio_layer,
        d.n_text_ctx,
        d.n_text_state,
        d.n_text_head,
        d.n_text_layer,
        d.n_mels,
        1,
    ] {
        w.write_all(&i(x)).map_err(io)?;
    }
    let filters = mel_filters(d.n_mels, 400, 16_000.0);
    w.write_all(&i(d.n_mels)).map_err(io)?;
    w.write_all(&i(201)).map_err(io)?;
    w.write_all(&filters.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>())
        .map_err(io)?;
    w.write_all(&i(tokens.len())).map_err(io)?;
    for t in &tokens {
        w.write_all(&i(t.len())).map_err(io)?;
        w.write_all(t).map_err(io)?;
    }
    for (g, c, part, single) in plan(&d) {
        let rows = match part {
            Some((k, n)) => {
                let total = m
                    .get(&c)
                    .map(|v| v.shape[0])
                    .ok_or_else(|| fail(format!("no variable {c}")))?;
                Some(k * total / n..(k + 1) * total / n)
            }
            None => None,
        };
        let (mut shape, vals) = values(m, &c, rows).map_err(fail)?;
        if g.starts_with("encoder.conv") && g.ends_with(".bias") {
            shape.push(1);
        }
        tensor(&mut w, &g, &shape, vals, !single).map_err(io)?;
    }
    w.flush().map_err(io)?;
    Ok(d)
}

/// GPT-2's byte-to-unicode table, inverted: the byte each character stands for.
fn byte_decoder() -> std::collections::HashMap<char, u8> {
    let mut bs: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xa1..=0xac)
        .chain(0xae..=0xff)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.iter()
        .zip(&cs)
        .map(|(&b, &c)| (char::from_u32(c).unwrap(), b as u8))
        .collect()
}

/// The ordinary tokens (those before `<|endoftext|>`) as raw bytes; whisper.cpp names
/// the special tokens itself.
pub fn raw_tokens(vocab: &[String]) -> Result<Vec<Vec<u8>>, String> {
    let eot = vocab
        .iter()
        .position(|t| t == "<|endoftext|>")
        .ok_or("the vocabulary has no <|endoftext|> token")?;
    let dec = byte_decoder();
    vocab[..eot]
        .iter()
        .map(|t| {
            t.chars()
                .map(|c| {
                    dec.get(&c)
                        .copied()
                        .ok_or_else(|| format!("token {t:?} is not in GPT-2's byte spelling"))
                })
                .collect()
        })
        .collect()
}

/// librosa's `filters.mel(sr, n_fft, n_mels)` (Slaney scale and area normalisation), the
/// filters Whisper was trained with: `n_mels` rows of `1 + n_fft / 2` weights.
pub fn mel_filters(n_mels: usize, n_fft: usize, sr: f64) -> Vec<f32> {
    let (f_sp, min_log_hz, min_log_mel) = (200.0 / 3.0, 1000.0, 15.0);
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= min_log_hz {
            min_log_mel + (f / min_log_hz).ln() / logstep
        } else {
            f / f_sp
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= min_log_mel {
            min_log_hz * (logstep * (m - min_log_mel)).exp()
        } else {
            f_sp * m
        }
    };
    let bins = 1 + n_fft / 2;
    let fft: Vec<f64> = (0..bins).map(|k| k as f64 * (sr / 2.0) / (bins - 1) as f64).collect();
    let top = hz_to_mel(sr / 2.0);
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut w = vec![0f32; n_mels * bins];
    for i in 0..n_mels {
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for (k, f) in fft.iter().enumerate() {
            let lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
            let upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
            w[i * bins + k] = ((lower.min(upper)).max(0.0) * enorm) as f32;
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_spelling_reads_back_as_bytes() {
        let v: Vec<String> = ["!", "Ġthe", "Ċ", "Ã©", "<|endoftext|>", "<|startoftranscript|>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let t = raw_tokens(&v).unwrap();
        assert_eq!(
            t,
            vec![b"!".to_vec(), b" the".to_vec(), b"\n".to_vec(), "é".as_bytes().to_vec()]
        );
    }

    #[test]
    fn mel_filters_have_librosas_shape_and_area() {
        let f = mel_filters(80, 400, 16_000.0);
        assert_eq!(f.len(), 80 * 201);
        // faster-whisper 1.2.1's FeatureExtractor(feature_size=80).mel_filters, printed
        let near = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(near(f[201 + 1], 0.001_990_82) && near(f[201 + 2], 0.022_871_77) && f[201 + 3] == 0.0);
        let last = &f[79 * 201..];
        let argmax = (0..201).max_by(|&a, &b| last[a].total_cmp(&last[b])).unwrap();
        assert_eq!(argmax, 192);
        assert!(near(last[192], 0.003_164_711_6));
        assert!((f.iter().sum::<f32>() - 1.999_024_2).abs() < 1e-4);
    }
}
