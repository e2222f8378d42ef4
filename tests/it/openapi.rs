//! The API contract, checked by an outside fuzzer: Schemathesis (from PyPI, in the
//! test virtual environment) runs against the document a live `vidseek serve` serves,
//! on a library with indexed footage, for a bounded time, and must find nothing: no
//! server error, every status, content type and response body as documented, invalid
//! input refused and valid input accepted. The seed changes every run (new inputs each
//! time) and is printed; `VIDSEEK_FUZZ_SEED=N` replays a run. The document describes
//! security as it is, and every route there is.

use std::process::Command;

use serde_json::{Value, json};
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common;
use crate::common::server::{Server, request};

#[test]
fn schemathesis_finds_the_served_api_conforming_to_its_document() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for (i, c) in [Colour::Red, Colour::Green].iter().enumerate() {
        VideoSpec::new(vec![
            (Scene::new(*c, Shape::Circle, Colour::Blue), 2.0),
            (Scene::empty(Colour::White), 2.0),
        ])
        .write(&lib.join(format!("v{i}.mp4")))
        .unwrap();
    }
    let s = Server::start(&tmp.path().join("data"), &[&lib], &[], None);
    let id = s.post_json("/api/index", &json!({"path": lib})).json()["id"]
        .as_i64()
        .unwrap();
    s.wait_for(120, "indexing", |s| {
        s.get(&format!("/api/jobs/{id}")).json()["state"] == "succeeded"
    });

    // Without a token the document asks for none.
    let doc = s.get("/api/openapi.json").json();
    assert!(doc["components"]["securitySchemes"].is_null(), "{}", doc["components"]);
    assert!(doc["paths"]["/api/search"]["get"]["security"].is_null());

    // A new seed each run, printed so that a failure can be replayed.
    let seed: u64 = match std::env::var("VIDSEEK_FUZZ_SEED") {
        Ok(s) => s.trim().parse().expect("VIDSEEK_FUZZ_SEED is a number"),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            (t.as_nanos() as u64 ^ u64::from(std::process::id())) % 1_000_000_007
        }
    };
    eprintln!("schemathesis seed {seed} (replay: VIDSEEK_FUZZ_SEED={seed})");
    let st = common::python().with_file_name("schemathesis");
    let out = Command::new(&st)
        .arg("--config-file")
        .arg(common::root().join("tests/fixtures/schemathesis.toml"))
        .arg("run")
        .arg(s.url("/api/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,\
             negative_data_rejection,positive_data_acceptance",
            "--max-time",
            "60",
            "--request-timeout",
            "20",
            // An endless event stream: no single response to check.
            "--exclude-path",
            "/api/events",
            "--seed",
            &seed.to_string(),
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run .ci/setup --test)", st.display()));
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let summary: String = text
        .lines()
        .rev()
        .take(25)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "Schemathesis found problems (seed {seed}; replay with VIDSEEK_FUZZ_SEED={seed}):\n{text}"
    );
    assert!(text.contains("passed"), "{summary}");
    eprintln!("{summary}");
}

#[test]
fn with_a_token_the_document_says_so_and_stays_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(&tmp.path().join("data"), &[], &[], Some("t0ken"));
    // The document and its page are open, everything else needs the token.
    let r = request(s.port, "GET", "/api/openapi.json", &[], None);
    assert_eq!(r.status, 200);
    let doc: Value = r.json();
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(doc["paths"]["/api/search"]["get"]["security"][0]["bearer"], json!([]));
    assert!(doc["paths"]["/api/openapi.json"]["get"]["security"].is_null());
    let page = request(s.port, "GET", "/api/docs", &[], None);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/api/openapi.json"));
    assert_eq!(request(s.port, "GET", "/api/health", &[], None).status, 401);
}

#[test]
fn the_document_describes_exactly_the_routes_there_are() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(&tmp.path().join("data"), &[], &[], None);
    let spec = s.get("/api/openapi.json").json();
    let mut described: Vec<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    described.sort();
    let mut routes = vec![
        "/api/docs",
        "/api/eval",
        "/api/events",
        "/api/health",
        "/api/index",
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/labels",
        "/api/model",
        "/api/openapi.json",
        "/api/probes",
        "/api/probes/{name}",
        "/api/prune",
        "/api/search",
        "/api/tags",
        "/api/timeline",
        "/api/upload",
        "/api/videos",
        "/api/videos/{id}",
        "/api/videos/{id}/clip",
        "/api/videos/{id}/text",
        "/api/videos/{id}/transcript",
        "/media/{id}",
        "/metrics",
        "/thumbs/{id}",
    ];
    routes.sort();
    assert_eq!(described, routes);
}
