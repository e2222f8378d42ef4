//! API keys (`vidseek keys`): made in the library's store, they are asked of every
//! request once one exists (even on loopback); a `search` key reads and is refused
//! (403) whatever changes the library; a revoked key is refused within seconds; only a
//! hash of a key is kept. Run again with the store in PostgreSQL (store_backends), where
//! keys made once count on every node.

use std::time::Duration;

use serde_json::Value;

use crate::common::assert::assert_error;
use crate::common::cli::{stderr, stdout, vs, vs_json};
use crate::common::server::{Server, request};

fn make_key(data: &std::path::Path, name: &str, scope: &str) -> String {
    let v: Value = vs_json(data, &["keys", "create", name, "--scope", scope, "--json"]);
    assert_eq!(v["name"], name);
    assert_eq!(v["scope"], scope);
    v["key"].as_str().unwrap().to_string()
}

fn with_key(s: &Server, key: &str, method: &str, path: &str) -> crate::common::server::Response {
    let auth = format!("Bearer {key}");
    request(s.port, method, path, &[("Authorization", auth.as_str())], None)
}

#[test]
fn keys_are_scoped_revocable_asked_for_once_they_exist_and_kept_only_as_hashes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let s = Server::start(&data, &[], &[], None);
    // No key and no token on loopback: open, as before.
    assert_eq!(request(s.port, "GET", "/api/videos", &[], None).status, 200);

    let reader = make_key(&data, "reader", "search");
    let admin = make_key(&data, "ops", "admin");
    // Made while the server runs: it asks for a key within its cache time.
    s.wait_for(8, "the server to ask for a key", |s| {
        request(s.port, "GET", "/api/videos", &[], None).status == 401
    });
    assert_error(&request(s.port, "GET", "/api/videos", &[], None), 401, "missing_token");
    let guess = format!("vsk_{}", "0".repeat(40));
    assert_error(&with_key(&s, &guess, "GET", "/api/videos"), 401, "bad_token");

    // Reads with either key.
    for key in [&reader, &admin] {
        for p in [
            "/api/videos",
            "/api/search?q=a%20red%20circle",
            "/api/jobs",
            "/api/labels",
        ] {
            assert_eq!(with_key(&s, key, "GET", p).status, 200, "{p}");
        }
    }
    // Changes only with the admin key: the search key gets 403 naming the scope and
    // the fix, and nothing is done.
    for (method, path) in [
        ("DELETE", "/api/videos/999"),
        ("DELETE", "/api/labels"),
        ("POST", "/api/prune"),
        ("DELETE", "/api/jobs/999"),
    ] {
        let r = with_key(&s, &reader, method, path);
        assert_error(&r, 403, "forbidden");
        assert!(r.text().contains("admin"), "{}", r.text());
        let r = with_key(&s, &admin, method, path);
        assert!(
            ![401, 403].contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
    }

    // The login page takes a key; its cookie works in place of the header.
    let body = format!("token={reader}");
    let r = request(
        s.port,
        "POST",
        "/login",
        &[],
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    );
    assert_eq!(r.status, 303);
    let cookie = r.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    assert_eq!(
        request(s.port, "GET", "/api/videos", &[("Cookie", &cookie)], None).status,
        200
    );

    // Listed by name, scope and first characters, never the key; the store keeps a hash.
    let list = vs_json(&data, &["keys", "list", "--json"]);
    let mut names: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ops", "reader"], "{list}");
    let text = list.to_string();
    assert!(!text.contains(&reader) && !text.contains(&admin), "{text}");
    assert!(
        list["keys"].as_array().unwrap().iter().all(|k| k["last_used"].is_i64()),
        "a used key says when: {list}"
    );
    let db = data.join("vidseek.db");
    if db.exists() {
        let mut bytes = std::fs::read(&db).unwrap();
        bytes.extend(std::fs::read(data.join("vidseek.db-wal")).unwrap_or_default());
        let hay = String::from_utf8_lossy(&bytes);
        assert!(
            !hay.contains(&reader) && !hay.contains(&admin),
            "a key is stored in clear"
        );
        assert!(
            hay.contains(&vidseek::key_hash(&reader)),
            "the key's hash is not where it is looked up"
        );
    }

    // Revoked: refused within the cache time; the other key goes on working.
    let out = vs(&data, &["keys", "revoke", "reader"]);
    assert!(out.status.success(), "{}", stderr(&out));
    s.wait_for(8, "the revoked key to be refused", |s| {
        with_key(s, &reader, "GET", "/api/videos").status == 401
    });
    assert_eq!(with_key(&s, &admin, "GET", "/api/videos").status, 200);
    std::thread::sleep(Duration::from_millis(100));

    // Bad input: a taken name, a bad name, an unknown key to revoke.
    for (args, says) in [
        (vec!["keys", "create", "ops"], "exists already"),
        (vec!["keys", "create", "two words"], "is not a key name"),
        (vec!["keys", "revoke", "nobody"], "no live key named \"nobody\""),
        (vec!["keys", "revoke", "reader"], "no live key named \"reader\""),
    ] {
        let out = vs(&data, &args);
        assert!(
            !out.status.success() && stderr(&out).contains(says),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}
