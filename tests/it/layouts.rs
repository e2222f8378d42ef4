//! `vidseek model import` (the layout conversion behind `model pull`) on local folders
//! laid out like Immich's and Hugging Face's ONNX CLIP repositories.

use std::path::Path;

use serde_json::{Value, json};
use vidseek::embed::Embedder;
use vidseek::modelhub::{self, Layout};

use crate::common::{self, cosine};

fn layout_graph(name: &str) -> std::path::PathBuf {
    common::fixtures().join("layouts").join(name)
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixtures().join("layout_reference.json")).unwrap()).unwrap()
}

fn write(path: &Path, v: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn immich_layout_becomes_a_package() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("ViT-B-32__openai");
    std::fs::create_dir_all(src.join("visual")).unwrap();
    std::fs::create_dir_all(src.join("textual")).unwrap();
    std::fs::copy(layout_graph("immich_visual.onnx"), src.join("visual/model.onnx")).unwrap();
    std::fs::copy(layout_graph("immich_textual.onnx"), src.join("textual/model.onnx")).unwrap();
    std::fs::copy(
        common::tiny_model_dir().join("tokenizer.json"),
        src.join("textual/tokenizer.json"),
    )
    .unwrap();
    write(
        &src.join("config.json"),
        &json!({"embed_dim": 8, "vision_cfg": {"image_size": 224}, "text_cfg": {"context_length": 77}}),
    );
    write(
        &src.join("visual/preprocess_cfg.json"),
        &json!({"size": [224, 224], "mode": "RGB", "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711], "interpolation": "bicubic", "resize_mode": "shortest"}),
    );
    assert_eq!(modelhub::detect_layout(&src), Some(Layout::Immich));

    let dest = tmp.path().join("pkg");
    let out = common::vidseek(
        &["model", "import", src.to_str().unwrap(), dest.to_str().unwrap()],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    let m: Value = serde_json::from_str(&std::fs::read_to_string(dest.join("model.json")).unwrap()).unwrap();
    assert_eq!(m["embedding_dim"], 8);
    assert_eq!(m["io"]["image_input"], "image");
    assert_eq!(m["io"]["image_output"], "embedding");
    assert_eq!(m["io"]["text_input"], "text");
    assert_eq!(
        m["text"]["dynamic_length"], false,
        "Immich's text graph has a fixed length"
    );
    assert_eq!(m["text"]["context_length"], 77);
    assert_eq!(m["name"], "ViT-B-32__openai");

    // The engine feeds int32 ids padded to 77, as the graph wants.
    let e = Embedder::load(&dest, &common::cpu_options()).unwrap();
    let want = reference();
    for (text, v) in want["immich"].as_object().unwrap() {
        let got = e.embed_texts(&[text.as_str()]).unwrap();
        assert!(cosine(got.row(0), &floats(v)) > 0.9999, "{text}");
    }
    let img = vidseek::decode::image(&common::fixtures().join("images/red_circle_blue_640x360.png")).unwrap();
    assert_eq!(e.embed_images(&[img]).unwrap().dim, 8);
}

#[test]
fn hugging_face_layout_becomes_a_package_and_gets_its_attention_mask() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("clip-vit-base-patch32");
    std::fs::create_dir_all(src.join("onnx")).unwrap();
    std::fs::copy(layout_graph("hf_vision.onnx"), src.join("onnx/vision_model.onnx")).unwrap();
    std::fs::copy(layout_graph("hf_text.onnx"), src.join("onnx/text_model.onnx")).unwrap();
    std::fs::copy(
        common::tiny_model_dir().join("tokenizer.json"),
        src.join("tokenizer.json"),
    )
    .unwrap();
    write(
        &src.join("config.json"),
        &json!({"projection_dim": 8, "text_config": {"max_position_embeddings": 77}, "vision_config": {"image_size": 224}}),
    );
    write(
        &src.join("preprocessor_config.json"),
        &json!({"crop_size": {"height": 224, "width": 224}, "do_center_crop": true, "do_resize": true, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "resample": 3, "size": {"shortest_edge": 224}}),
    );
    assert_eq!(modelhub::detect_layout(&src), Some(Layout::HuggingFace));
    let dest = tmp.path().join("pkg");
    let m = modelhub::import(&src, &dest, Some("xenova-test"), None).unwrap();
    assert_eq!(m.name, "xenova-test");
    assert_eq!(m.embedding_dim, 8);
    assert_eq!(m.io.text_mask.as_deref(), Some("attention_mask"));
    assert_eq!(
        m.io.image_output, "image_embeds",
        "the rank-2 output, not last_hidden_state"
    );
    assert!(m.text.dynamic_length);
    assert_eq!(m.text.pad_id, 49407, "Hugging Face pads with the end token");
    assert_eq!(m.image.mean, [0.5, 0.5, 0.5]);
    assert_eq!(m.image.interpolation, "bicubic");

    let e = Embedder::load(&dest, &common::cpu_options()).unwrap();
    let want = reference();
    for (text, v) in want["huggingface"].as_object().unwrap() {
        let got = e.embed_texts(&[text.as_str()]).unwrap();
        assert!(cosine(got.row(0), &floats(v)) > 0.9999, "{text}");
    }
    // In a batch the shorter sentence is padded: only a correct mask keeps it unchanged.
    let batch = e.embed_texts(&["a red circle", "an empty black background"]).unwrap();
    assert!(cosine(batch.row(0), &floats(&want["huggingface"]["a red circle"])) > 0.9999);
}

#[test]
fn unknown_layouts_and_unknown_models_are_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let e = modelhub::import(tmp.path(), &tmp.path().join("out"), None, None).unwrap_err();
    assert!(e.to_string().contains("not a model layout"), "{e}");
    let e = modelhub::pull("no-such-model", &tmp.path().join("x"), None).unwrap_err();
    assert!(e.to_string().contains("clip-vit-b32"), "{e}");
}
