//! Replicas of every real ONNX CLIP layout (tests/fixtures/make_replicas.py builds them
//! from the tiny model, citing the public source of each fact): each one imports with
//! what its layout says (fixed or dynamic batch, special and pad ids, image size and
//! resize, scoring link, external weights, combined graphs, variants), embeds exactly
//! like a Python reference that implements that layout's own preprocessing and
//! tokenization, indexes rendered footage with the default batch size and finds its
//! scenes at the right times. Bad packages are refused with the file and the fix.

use std::path::{Path, PathBuf};

use serde_json::Value;
use vidseek::{Colour, Scene, Shape, VideoSpec};
use vidseek::{Embedder, Manifest};
use vidseek::{ImportOptions, Variant};

use crate::common::assert::{cosine, floats, overlaps};
use crate::common::cli;
use crate::common::models::{cpu_options, replicas};
use crate::common::{copy_dir, fixtures};

fn import(name: &str, variant: Variant, dest: &Path) -> Manifest {
    let (dir, _) = replicas();
    vidseek::import_model(
        &dir.join(name),
        dest,
        &ImportOptions {
            variant,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name} ({variant:?}): {e}"))
}

/// The manifest says what the replica's layout is.
fn check_manifest(name: &str, m: &Manifest, want: &Value) {
    let ctx = |what: &str| format!("{name}: {what} in {}", serde_json::to_string_pretty(m).unwrap());
    let opt = |v: Option<usize>| v.map_or(Value::Null, Value::from);
    assert_eq!(
        m.origin.as_ref().unwrap().layout,
        want["layout"].as_str().unwrap(),
        "{}",
        ctx("layout")
    );
    assert_eq!(opt(m.image.batch), want["image_batch"], "{}", ctx("image batch"));
    assert_eq!(opt(m.text.batch), want["text_batch"], "{}", ctx("text batch"));
    assert_eq!(
        m.text.dynamic_length,
        want["dynamic_length"].as_bool().unwrap(),
        "{}",
        ctx("dynamic length")
    );
    assert_eq!(
        m.text.start_id.map(Value::from).unwrap_or(Value::Null),
        want["start_id"],
        "{}",
        ctx("start id")
    );
    assert_eq!(
        m.text.end_id as u64,
        want["end_id"].as_u64().unwrap(),
        "{}",
        ctx("end id")
    );
    assert_eq!(
        m.text.pad_id as u64,
        want["pad_id"].as_u64().unwrap(),
        "{}",
        ctx("pad id")
    );
    assert_eq!(
        m.image.size as u64,
        want["image_size"].as_u64().unwrap(),
        "{}",
        ctx("image size")
    );
    assert_eq!(m.image.resize, want["resize"].as_str().unwrap(), "{}", ctx("resize"));
    let link = serde_json::to_value(m.scoring().link).unwrap();
    assert_eq!(link, want["link"], "{}", ctx("scoring"));
    let clean = serde_json::to_value(m.text.clean).unwrap();
    assert_eq!(
        clean,
        *want.get("clean").unwrap_or(&Value::from("whitespace")),
        "{}",
        ctx("clean-up")
    );
    assert_eq!(
        m.text.pad_to_context,
        want["pad_to_context"].as_bool().unwrap_or(false),
        "{}",
        ctx("pad_to_context")
    );
    assert_eq!(m.io.text_mask.as_deref(), want["text_mask"].as_str(), "{}", ctx("mask"));
    assert_eq!(
        m.io.combined,
        want["combined"].as_bool().unwrap_or(false),
        "{}",
        ctx("combined")
    );
    assert_eq!(
        !m.files.external_data.is_empty(),
        want["external_data"].as_bool().unwrap_or(false),
        "{}",
        ctx("external data")
    );
}

/// Embeddings equal the layout's own Python pipeline: text >= 0.9999, images >= 0.999.
fn check_parity(name: &str, e: &Embedder, reference: &Value) -> (f32, f32) {
    let (mut worst_text, mut worst_image) = (1f32, 1f32);
    for (text, want) in reference["texts"].as_object().unwrap() {
        let got = e.embed_texts(&[text.as_str()]).unwrap();
        let c = cosine(got.row(0), &floats(want));
        worst_text = worst_text.min(c);
        assert!(c >= 0.9999, "{name}: text {text:?} cosine {c}");
    }
    // In a batch of two (padded to one length) the vectors do not change (a wrong mask
    // or pad would; dynamic int8 quantization alone moves them by about 2e-4, because
    // it scales activations over the whole batch).
    let texts: Vec<&str> = reference["texts"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .take(2)
        .collect();
    let batch = e.embed_texts(&texts).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let c = cosine(batch.row(i), &floats(&reference["texts"][*t]));
        assert!(c >= 0.999, "{name}: {t:?} in a batch, cosine {c}");
    }
    let mut images = Vec::new();
    let mut wants = Vec::new();
    for (file, want) in reference["images"].as_object().unwrap() {
        images.push(vidseek::decode_image(&fixtures().join("images").join(file)).unwrap());
        wants.push((file.clone(), floats(want)));
    }
    for (img, (file, want)) in images.iter().zip(&wants) {
        let got = e.embed_images(std::slice::from_ref(img)).unwrap();
        let c = cosine(got.row(0), want);
        worst_image = worst_image.min(c);
        assert!(c >= 0.999, "{name}: image {file} cosine {c}");
    }
    // All images in one call: a graph fixed at batch 1 gets them one by one, each row
    // back in its place (dynamic int8 quantization moves batched rows by ~1e-3).
    let got = e.embed_images(&images).unwrap();
    for (i, (file, want)) in wants.iter().enumerate() {
        let c = cosine(got.row(i), want);
        assert!(c >= 0.995, "{name}: image {file} in a batch, cosine {c}");
    }
    (worst_text, worst_image)
}

#[test]
fn every_replica_imports_with_what_its_layout_says_and_embeds_like_its_reference() {
    let (_, refs) = replicas();
    let tmp = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for (name, r) in refs.as_object().unwrap() {
        let variants: Vec<(Variant, &Value)> = match r.get("variants") {
            Some(v) => ["fp32", "quantized", "fp16"]
                .iter()
                .map(|k| (k.parse().unwrap(), &v[*k]))
                .collect(),
            None => vec![(Variant::Fp32, r)],
        };
        for (variant, reference) in variants {
            let dest = tmp.path().join(format!("{name}-{}", variant.name()));
            let m = import(name, variant, &dest);
            check_manifest(name, &m, &r["expect"]);
            let e = Embedder::load(&dest, &cpu_options()).unwrap();
            // An English CLIP (OpenAI's BPE ids) gets the paper's 80 prompt templates;
            // the others (XLM-R, SigLIP's vocabularies) embed text as written.
            let clip_bpe = m.text.start_id == Some(49406);
            assert_eq!(
                e.templates().map(<[String]>::len),
                clip_bpe.then_some(80),
                "{name}: prompt templates"
            );
            let (t, i) = check_parity(&format!("{name} {}", variant.name()), &e, reference);
            report.push(format!("{name} {}: text {t:.6}, image {i:.6}", variant.name()));
        }
    }
    eprintln!("replica parity (worst cosine):\n  {}", report.join("\n  "));
}

/// A 3-scene video: square for squash layouts (the tiny model never saw squeezed shapes).
fn render(path: &Path, square: bool) -> Vec<(String, f64, f64)> {
    let scenes = vec![
        (Scene::new(Colour::Red, Shape::Circle, Colour::Blue), 4.0),
        (Scene::new(Colour::Green, Shape::Star, Colour::White), 4.0),
        (Scene::new(Colour::Yellow, Shape::Triangle, Colour::Purple), 4.0),
    ];
    let mut spec = VideoSpec::new(scenes);
    if square {
        spec.width = 360;
        spec.height = 360;
    }
    spec.write(path)
        .unwrap()
        .into_iter()
        .map(|s| (s.scene.caption(), s.start, s.end))
        .collect()
}

#[test]
fn every_replica_indexes_rendered_footage_with_the_default_batch_and_finds_its_scenes() {
    let (_, refs) = replicas();
    let tmp = tempfile::tempdir().unwrap();
    let wide = tmp.path().join("wide/shapes.mp4");
    let square = tmp.path().join("square/shapes.mp4");
    std::fs::create_dir_all(wide.parent().unwrap()).unwrap();
    std::fs::create_dir_all(square.parent().unwrap()).unwrap();
    let truth_wide = render(&wide, false);
    let truth_square = render(&square, true);
    for (name, r) in refs.as_object().unwrap() {
        let pkg = tmp.path().join(format!("pkg-{name}"));
        let m = import(name, Variant::Fp32, &pkg);
        let squash = m.image.resize == "squash";
        let (video, truth) = if squash {
            (&square, &truth_square)
        } else {
            (&wide, &truth_wide)
        };
        let data = tmp.path().join(format!("data-{name}"));
        let base = [
            "--data",
            data.to_str().unwrap(),
            "--model",
            pkg.to_str().unwrap(),
            "--device",
            "cpu",
        ];
        let out = cli::vidseek(
            &[&base[..], &["index", video.to_str().unwrap(), "--json"]].concat(),
            &[],
            None,
        );
        assert!(out.status.success(), "{name}: index: {}", cli::stderr(&out));
        let report: Value = serde_json::from_str(&cli::stdout(&out)).unwrap();
        assert_eq!(report["jobs"][0]["indexed"], 1, "{name}: {report}");
        for (caption, start, end) in truth {
            let out = cli::vidseek(
                &[&base[..], &["search", caption, "-k", "1", "--json"]].concat(),
                &[],
                None,
            );
            assert!(out.status.success(), "{name}: search: {}", cli::stderr(&out));
            let hit = &serde_json::from_str::<Value>(&cli::stdout(&out)).unwrap()["results"][0];
            let (s, e) = (hit["start"].as_f64().unwrap(), hit["end"].as_f64().unwrap());
            assert!(
                overlaps(hit, *start, *end),
                "{name} ({} layout, {}): {caption:?} found at {s}-{e}, the scene is {start}-{end}",
                r["expect"]["layout"],
                m.image.resize
            );
        }
    }
}

/// The replicas are strict enough to catch a loader that gets a layout wrong: a wrong
/// pad id (an XLM-R tower builds its mask from it), a start token SigLIP does not have,
/// a SigLIP query not padded to the context length, text not canonicalized.
#[test]
fn replicas_give_other_vectors_when_the_layout_is_read_wrong() {
    let (_, refs) = replicas();
    let tmp = tempfile::tempdir().unwrap();
    let far = |name: &str, edit: &dyn Fn(&mut Value), text: &str| -> f32 {
        let pkg = tmp.path().join(format!("{name}-{}", text.len()));
        import(name, Variant::Fp32, &pkg);
        let path = pkg.join("model.json");
        let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut m);
        std::fs::write(&path, m.to_string()).unwrap();
        let e = Embedder::load(&pkg, &cpu_options()).unwrap();
        let got = e.embed_texts(&[text]).unwrap();
        let r = &refs[name];
        let texts = r.get("variants").map_or(&r["texts"], |v| &v["fp32"]["texts"]);
        cosine(got.row(0), &floats(&texts[text]))
    };
    let xlmr = "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k";
    let c = far(
        xlmr,
        &|m| m["text"]["pad_id"] = 0.into(),
        "a red circle on a blue background",
    );
    assert!(c < 0.99, "a wrong pad id must change an XLM-R vector (cosine {c})");
    let c = far(
        "ViT-B-16-SigLIP__webli",
        &|m| m["text"]["start_id"] = 1.into(),
        "yellow triangle",
    );
    assert!(
        c < 0.99,
        "a start token SigLIP lacks must change the vector (cosine {c})"
    );
    let c = far(
        "siglip-base-patch16-224",
        &|m| m["text"]["pad_to_context"] = false.into(),
        "yellow triangle",
    );
    assert!(c < 0.99, "SigLIP at its true length must differ (cosine {c})");
    let c = far(
        "ViT-B-16-SigLIP__webli",
        &|m| m["text"]["clean"] = "whitespace".into(),
        "A Red Circle.",
    );
    assert!(c < 0.99, "SigLIP without canonicalize must differ (cosine {c})");
}

/// A copy of replica `name` in `to`, for a test to break.
fn replica_copy(name: &str, to: &Path) -> PathBuf {
    copy_dir(&replicas().0.join(name), to);
    to.to_path_buf()
}

/// The SigLIP replica in `to` without its fp16 graphs, and the options asking for them.
fn siglip_without_fp16(to: &Path) -> (PathBuf, ImportOptions) {
    let src = replica_copy("siglip-base-patch16-224", to);
    for f in ["onnx/vision_model_fp16.onnx", "onnx/text_model_fp16.onnx"] {
        std::fs::remove_file(src.join(f)).unwrap();
    }
    let opts = ImportOptions {
        variant: Variant::Fp16,
        ..Default::default()
    };
    (src, opts)
}

#[test]
fn a_missing_external_weight_file_is_named_and_nothing_is_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = replica_copy("XLM-Roberta-Large-Vit-B-16Plus", &tmp.path().join("mclip"));
    let pkg = tmp.path().join("mclip-pkg");
    let m = vidseek::import_model(&src, &pkg, &ImportOptions::default()).unwrap();
    assert!(m.files.external_data.len() > 5, "{:?}", m.files.external_data);
    let victim = &m.files.external_data[3];
    std::fs::remove_file(pkg.join(victim)).unwrap();
    let e = Embedder::load(&pkg, &cpu_options()).unwrap_err().to_string();
    assert!(e.contains(victim.as_str()) && e.contains("external weights"), "{e}");
    std::fs::remove_file(src.join(victim)).unwrap();
    let again = tmp.path().join("mclip-pkg2");
    let e = vidseek::import_model(&src, &again, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains(victim.as_str()), "{e}");
    assert!(!again.exists(), "a failed import leaves nothing behind");
}

#[test]
fn a_config_and_a_graph_disagreeing_on_the_image_size_are_both_named() {
    let tmp = tempfile::tempdir().unwrap();
    let src = replica_copy("ViT-B-32__openai", &tmp.path().join("b32"));
    let cfg = src.join("visual/preprocess_cfg.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    v["size"] = serde_json::json!([256, 256]);
    std::fs::write(&cfg, v.to_string()).unwrap();
    let e = vidseek::import_model(&src, &tmp.path().join("b32-pkg"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("256") && e.contains("224") && e.contains("image.size"),
        "{e}"
    );
}

#[test]
fn an_xlmr_tokenizer_config_without_a_pad_token_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = replica_copy("XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k", &tmp.path().join("xlmr"));
    let tc = src.join("textual/tokenizer_config.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&tc).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("pad_token");
    std::fs::write(&tc, v.to_string()).unwrap();
    let e = vidseek::import_model(&src, &tmp.path().join("xlmr-pkg"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokenizer_config.json") && e.contains("pad"), "{e}");
}

#[test]
fn a_variant_the_repository_lacks_is_refused_listing_the_ones_it_has() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, opts) = siglip_without_fp16(&tmp.path().join("siglip"));
    let e = vidseek::import_model(&src, &tmp.path().join("siglip-pkg"), &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fp16") && e.contains("vision_model_quantized.onnx"), "{e}");
}

#[test]
fn a_folder_that_is_no_model_is_refused_naming_what_was_found_and_the_layouts_read() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk");
    std::fs::create_dir_all(junk.join("weights")).unwrap();
    std::fs::write(junk.join("notes.txt"), "x").unwrap();
    let e = vidseek::import_model(&junk, &tmp.path().join("junk-pkg"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("notes.txt") && e.contains("weights/") && e.contains("transformers.js"),
        "{e}"
    );
}

#[test]
fn reimporting_replaces_a_package_whole_and_a_failed_import_leaves_it_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, opts) = siglip_without_fp16(&tmp.path().join("siglip"));
    let good = tmp.path().join("b32-good");
    vidseek::import_model(&replicas().0.join("ViT-B-32__openai"), &good, &ImportOptions::default()).unwrap();
    let before = std::fs::read_to_string(good.join("model.json")).unwrap();
    assert!(vidseek::import_model(&src, &good, &opts).is_err());
    assert_eq!(std::fs::read_to_string(good.join("model.json")).unwrap(), before);
    Embedder::load(&good, &cpu_options()).unwrap();
}
