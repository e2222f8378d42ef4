//! The token: a server bound off loopback refuses to start without one; with one, every
//! call needs it (the header, the login page's cookie, or `?token=` on the event stream,
//! which an EventSource cannot send headers to), and writes without it change nothing.

use serde_json::json;

use crate::common::assert::assert_error;
use crate::common::models;
use crate::common::server::{Server, first_bytes, request};

#[test]
fn token_is_required_off_loopback_and_checked_on_every_call() {
    let tmp = tempfile::tempdir().unwrap();
    // Non-loopback without a token: refuses to start.
    let out = std::process::Command::new(crate::common::bin())
        .args([
            "--data",
            tmp.path().join("d0").to_str().unwrap(),
            "--device",
            "cpu",
            "--model",
            models::tiny_model_dir().to_str().unwrap(),
            "serve",
            "--bind",
            "0.0.0.0:0",
        ])
        .env_remove("VIDSEEK_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without a token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let s = Server::start(&tmp.path().join("data"), &[], &[], Some("s3cret-token"));
    let no = request(s.port, "GET", "/api/health", &[], None);
    assert_error(&no, 401, "missing_token");
    let wrong = request(s.port, "GET", "/api/health", &[("Authorization", "Bearer nope")], None);
    assert_error(&wrong, 401, "bad_token");
    for p in [
        "/api/videos",
        "/api/search?q=x",
        "/media/1",
        "/thumbs/1",
        "/metrics",
        "/api/jobs",
    ] {
        assert_eq!(request(s.port, "GET", p, &[], None).status, 401, "{p}");
    }
    assert_eq!(s.get("/api/health").status, 200);
    // The UI itself loads; its API calls need the token.
    assert_eq!(request(s.port, "GET", "/", &[], None).status, 200);
    // The login page sets a cookie that works in place of the header.
    let r = request(
        s.port,
        "POST",
        "/login",
        &[],
        Some(("application/x-www-form-urlencoded", b"token=s3cret-token")),
    );
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("vidseek_token="));
    assert_eq!(
        request(s.port, "GET", "/api/health", &[("Cookie", &cookie)], None).status,
        200
    );
    let bad = request(
        s.port,
        "POST",
        "/login",
        &[],
        Some(("application/x-www-form-urlencoded", b"token=guess")),
    );
    assert_eq!(bad.status, 401);
    // A link into the UI survives the login; another site is never the way out.
    for (next, to) in [
        ("%2F%3Fq%3Da%2Bdog%26v%3D3%26t%3D12.50", "/?q=a+dog&v=3&t=12.50"),
        ("%2F%2Fevil.example", "/"),
        ("https%3A%2F%2Fevil.example", "/"),
    ] {
        let body = format!("token=s3cret-token&next={next}");
        let r = request(
            s.port,
            "POST",
            "/login",
            &[],
            Some(("application/x-www-form-urlencoded", body.as_bytes())),
        );
        assert_eq!((r.status, r.header("location")), (303, Some(to)), "next={next}");
    }
}

#[test]
fn writes_without_the_token_change_nothing_and_the_event_stream_takes_it_as_a_parameter() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib1, lib2) = (tmp.path().join("one"), tmp.path().join("two"));
    std::fs::create_dir_all(&lib1).unwrap();
    std::fs::create_dir_all(&lib2).unwrap();
    let token = "t0ken-for-claims";
    let s = Server::start(&tmp.path().join("data"), &[&lib1, &lib2], &[], Some(token));
    let body = json!({"path": lib2}).to_string();

    // Writes without the token: 401, and nothing happens.
    for (method, path) in [
        ("POST", "/api/index"),
        ("POST", "/api/prune"),
        ("DELETE", "/api/videos/1"),
        ("POST", "/api/model"),
    ] {
        let r = request(s.port, method, path, &[], Some(("application/json", body.as_bytes())));
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text());
    }
    assert!(s.get("/api/jobs").json()["jobs"].as_array().unwrap().is_empty());

    // The event stream takes ?token= (an EventSource cannot send headers).
    assert!(first_bytes(s.port, "/api/events").contains("401"));
    assert!(first_bytes(s.port, "/api/events?token=wrong").contains("401"));
    let ok = first_bytes(s.port, &format!("/api/events?token={token}"));
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains(": connected"), "{ok}");
}
