//! Broken model packages are refused at load, naming the file and the fix: a missing
//! graph or tokenizer, a manifest that disagrees with its graphs (embedding size, image
//! size, input names) or cannot be read, a corrupt graph. A manifest's fixed-length
//! claim is checked against the graph.

use std::path::Path;

use vidseek::{EmbedError, Embedder};

use crate::common::assert::cosine;
use crate::common::models::{cpu_options, edit_manifest, load_err, package_copy, tiny};

#[test]
fn missing_graph_file_names_the_file_and_the_fix() {
    let pkg = package_copy();
    std::fs::remove_file(pkg.path().join("visual.onnx")).unwrap();
    let e = load_err(pkg.path());
    assert!(matches!(e, EmbedError::FileMissing { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("visual.onnx") && msg.contains("missing") && msg.contains("export_clip.py"),
        "{msg}"
    );
}

#[test]
fn missing_tokenizer_is_reported_by_name() {
    let pkg = package_copy();
    std::fs::remove_file(pkg.path().join("tokenizer.json")).unwrap();
    let msg = load_err(pkg.path()).to_string();
    assert!(msg.contains("tokenizer.json") && msg.contains("missing"), "{msg}");

    std::fs::write(pkg.path().join("tokenizer.json"), "{ not a tokenizer").unwrap();
    let e = load_err(pkg.path());
    assert!(matches!(e, EmbedError::Tokenizer { .. }), "{e:?}");
    assert!(e.to_string().contains("clip_tokenizer.py"), "{e}");
}

#[test]
fn wrong_embedding_dim_in_the_manifest_is_caught_at_load() {
    let pkg = package_copy();
    edit_manifest(pkg.path(), |v| v["embedding_dim"] = 512.into());
    let e = load_err(pkg.path());
    let msg = e.to_string();
    assert!(matches!(e, EmbedError::Graph { .. }), "{e:?}");
    assert!(msg.contains("embedding_dim 512") && msg.contains("onnx"), "{msg}");
}

#[test]
fn wrong_image_size_in_the_manifest_is_caught_at_load() {
    let pkg = package_copy();
    edit_manifest(pkg.path(), |v| v["image"]["size"] = 336.into());
    let msg = load_err(pkg.path()).to_string();
    assert!(msg.contains("visual.onnx") && msg.contains("image.size 336"), "{msg}");
}

#[test]
fn corrupt_onnx_names_the_file_and_says_it_is_corrupt() {
    let pkg = package_copy();
    std::fs::write(
        pkg.path().join("textual.onnx"),
        b"\x08\x07garbage that is not a protobuf",
    )
    .unwrap();
    let e = load_err(pkg.path());
    let msg = e.to_string();
    assert!(matches!(e, EmbedError::Graph { .. }), "{e:?}");
    assert!(msg.contains("textual.onnx") && msg.contains("corrupt"), "{msg}");
}

#[test]
fn manifest_problems_name_model_json() {
    let pkg = package_copy();
    std::fs::write(pkg.path().join("model.json"), "{\"format\": 1,").unwrap();
    let msg = load_err(pkg.path()).to_string();
    assert!(msg.contains("model.json") && msg.contains("models/README.md"), "{msg}");

    let pkg = package_copy();
    edit_manifest(pkg.path(), |v| v["image"]["interpolation"] = "lanczos".into());
    let msg = load_err(pkg.path()).to_string();
    assert!(msg.contains("interpolation") && msg.contains("bicubic"), "{msg}");

    let pkg = package_copy();
    std::fs::remove_file(pkg.path().join("model.json")).unwrap();
    assert!(load_err(pkg.path()).to_string().contains("model.json"));

    let e = load_err(Path::new("/nonexistent/vidseek-model"));
    assert!(matches!(e, EmbedError::PackageMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("--model"), "{e}");
}

#[test]
fn manifest_naming_a_graph_input_that_does_not_exist_is_caught() {
    let pkg = package_copy();
    edit_manifest(pkg.path(), |v| v["io"]["image_input"] = "image".into());
    let msg = load_err(pkg.path()).to_string();
    assert!(
        msg.contains("\"image\"") && msg.contains("pixel_values") && msg.contains("\"io\""),
        "{msg}"
    );
}

#[test]
fn fixed_length_claim_is_checked_against_the_graph() {
    // The bundled text graph has a dynamic sequence axis; the manifest may still ask
    // for padding to the context length, and then every query is padded.
    let pkg = package_copy();
    edit_manifest(pkg.path(), |v| v["text"]["dynamic_length"] = false.into());
    let padded = Embedder::load(pkg.path(), &cpu_options()).unwrap();
    let a = padded.embed_texts(&["a red circle"]).unwrap();
    let b = tiny().embed_texts(&["a red circle"]).unwrap();
    assert!(cosine(a.row(0), b.row(0)) > 0.99999);
}
