//! Finding and reporting the runtime: a CUDA request without a CUDA runtime fails
//! loudly (auto falls back), the ONNX Runtime library search names every place it
//! looked, `vidseek doctor` reports the runtime, its providers, FFmpeg and the model, and
//! the `embed` commands print the library's vectors and clear errors.

use std::path::Path;

use serde_json::Value;
use vidseek::{Device, EmbedError, EmbedOptions, Embedder, runtime};

use crate::common::assert::{assert_provider, cosine, floats};
use crate::common::cli;
use crate::common::models::{cpu_options, tiny, tiny_model_dir};
use crate::common::{expect_cuda, fixtures};

#[test]
fn cuda_request_fails_loudly_without_a_cuda_runtime() {
    let opts = EmbedOptions {
        device: Device::Cuda,
        ..cpu_options()
    };
    match (Embedder::load(&tiny_model_dir(), &opts), expect_cuda()) {
        // A machine with the GPU library and a GPU may run this suite too.
        (Ok(m), Some(true) | None) => assert_eq!(m.provider(), "CUDA"),
        (Ok(m), Some(false)) => panic!("VIDSEEK_EXPECT_CUDA=0, yet CUDA loaded ({})", m.provider()),
        (Err(e), Some(true)) => panic!("VIDSEEK_EXPECT_CUDA=1, yet CUDA failed: {e}"),
        (Err(e), Some(false) | None) => {
            assert!(matches!(e, EmbedError::Cuda { .. }), "{e:?}");
            // The message says how to go on without a GPU.
            assert!(e.to_string().contains("--device cpu"), "{e}");
        }
    }
    // auto never fails for want of CUDA.
    let auto = EmbedOptions {
        device: Device::Auto,
        ..cpu_options()
    };
    let m = Embedder::load(&tiny_model_dir(), &auto).unwrap();
    assert_provider(m.provider());
}

#[test]
fn runtime_search_reports_every_place_it_looked() {
    let e = runtime::locate(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("/nonexistent/libonnxruntime.so") && msg.contains("--ort-lib"),
        "{msg}"
    );
    // The project-local folder made by .ci/setup is found without any setting.
    let found = runtime::locate(None).unwrap();
    assert!(
        found
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("libonnxruntime.so")
    );
}

#[test]
fn cli_embed_text_prints_the_same_normalised_vector_as_the_library() {
    let model = tiny_model_dir();
    let out = cli::vidseek(
        &[
            "embed",
            "text",
            "a red circle",
            "--json",
            "--model",
            model.to_str().unwrap(),
            "--device",
            "cpu",
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", cli::stderr(&out));
    let v: Value = serde_json::from_str(&cli::stdout(&out)).unwrap();
    assert_eq!(v["model"], tiny().model_name());
    assert_eq!(v["dim"].as_u64().unwrap() as usize, tiny().dim());
    let cli = floats(&v["embedding"]);
    let lib = tiny().embed_texts(&["a red circle"]).unwrap();
    assert!(cosine(&cli, lib.row(0)) > 0.99999);
    let norm: f32 = cli.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
}

#[test]
fn cli_global_options_work_before_the_subcommand_and_from_the_environment() {
    let model = tiny_model_dir();
    let img = fixtures().join("images/red_circle_blue_640x360.png");
    let before = cli::vidseek(
        &[
            "--model",
            model.to_str().unwrap(),
            "--device",
            "cpu",
            "embed",
            "image",
            img.to_str().unwrap(),
            "--json",
        ],
        &[],
        None,
    );
    assert!(before.status.success(), "{}", cli::stderr(&before));
    let from_env = cli::vidseek(
        &["embed", "image", img.to_str().unwrap(), "--json"],
        &[("VIDSEEK_MODEL", model.to_str().unwrap()), ("VIDSEEK_DEVICE", "cpu")],
        None,
    );
    assert!(from_env.status.success(), "{}", cli::stderr(&from_env));
    let a: Value = serde_json::from_str(&cli::stdout(&before)).unwrap();
    let b: Value = serde_json::from_str(&cli::stdout(&from_env)).unwrap();
    assert!(cosine(&floats(&a["embedding"]), &floats(&b["embedding"])) > 0.99999);
}

#[test]
fn cli_without_onnx_runtime_says_how_to_install_it() {
    let out = cli::vidseek(
        &[
            "embed",
            "text",
            "a red circle",
            "--model",
            tiny_model_dir().to_str().unwrap(),
        ],
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
        None,
    );
    assert!(!out.status.success());
    let err = cli::stderr(&out);
    assert!(
        err.contains("ONNX Runtime library not found") && err.contains("ORT_DYLIB_PATH"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn cli_embed_image_of_a_non_image_fails_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.png");
    std::fs::write(&bad, b"this is text, not a PNG").unwrap();
    let out = cli::vidseek(
        &[
            "embed",
            "image",
            bad.to_str().unwrap(),
            "--model",
            tiny_model_dir().to_str().unwrap(),
        ],
        &[],
        None,
    );
    assert!(!out.status.success());
    let err = cli::stderr(&out);
    assert!(
        err.contains("notes.png") && err.contains("not a readable image"),
        "{err}"
    );
}

/// `doctor --json` with the bundled model after `args`, in an environment with `env`.
fn doctor_json(args: &[&str], env: &[(&str, &str)]) -> Value {
    let tiny_dir = tiny_model_dir();
    let mut full = args.to_vec();
    full.extend(["doctor", "--json", "--model", tiny_dir.to_str().unwrap()]);
    let out = cli::vidseek(&full, env, None);
    assert!(out.status.success(), "{args:?}: {}", cli::stderr(&out));
    serde_json::from_str(&cli::stdout(&out)).unwrap()
}

#[test]
fn doctor_reports_runtime_providers_ffmpeg_and_model() {
    let v = doctor_json(&[], &[]);
    assert!(v["onnxruntime"]["version"].as_str().unwrap().starts_with("1."));
    assert!(
        v["onnxruntime"]["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "CPU")
    );
    // Any FFmpeg release ffmpeg-next 9 supports: 4.x (libavcodec 58) to 8.x (62).
    let major: u32 = v["ffmpeg"]["libavcodec"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((58..=62).contains(&major), "{}", v["ffmpeg"]);
    assert_eq!(v["model"]["valid"], true);
    assert_provider(v["model"]["provider"].as_str().unwrap());

    // No --threads: ONNX Runtime's choice.
    assert!(v["model"]["threads"].is_null(), "{v}");
}

#[test]
fn ort_lib_and_ort_dylib_path_load_the_library_named_wherever_it_lives() {
    let elsewhere = tempfile::tempdir().unwrap();
    let found = runtime::locate(None).unwrap();
    let copy = elsewhere.path().join("libonnxruntime.so");
    std::fs::copy(&found, &copy).unwrap();
    for (args, env) in [
        (vec!["--ort-lib", copy.to_str().unwrap()], vec![]),
        (vec![], vec![("ORT_DYLIB_PATH", copy.to_str().unwrap())]),
    ] {
        let d = doctor_json(&args, &env);
        assert_eq!(
            d["onnxruntime"]["library"],
            copy.display().to_string(),
            "{args:?} {env:?}: {d}"
        );
    }
}

#[test]
fn threads_reach_the_models_configuration() {
    let t = doctor_json(&["--threads", "1"], &[]);
    assert_eq!(t["model"]["threads"], 1, "{t}");
}

#[test]
fn strict_gpu_mode_fails_a_model_on_the_cpu_with_the_reason() {
    let strict = cli::vidseek(
        &[
            "doctor",
            "--device",
            "cpu",
            "--model",
            tiny_model_dir().to_str().unwrap(),
        ],
        &[("VIDSEEK_EXPECT_CUDA", "1")],
        None,
    );
    assert!(!strict.status.success(), "{}", cli::stdout(&strict));
    assert!(cli::stdout(&strict).contains("expected       CUDA (VIDSEEK_EXPECT_CUDA=1), but the model runs on CPU"));
}

#[test]
fn doctor_with_a_broken_model_says_it_is_invalid() {
    let broken = cli::vidseek(&["doctor", "--model", "/nonexistent/model"], &[], None);
    assert!(!broken.status.success());
    assert!(cli::stdout(&broken).contains("INVALID"));
}

/// `vidseek model list | head -1`: the reader goes before the command has printed; the
/// command ends the way Unix tools do (by SIGPIPE, silently), not with a panic about a
/// failed print.
#[test]
fn a_printing_command_ends_quietly_when_its_reader_goes() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::common::bin())
        .args(["model", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the only read end before the process (still starting) writes anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.signal(), Some(13), "{:?}: {err}", out.status);
}
