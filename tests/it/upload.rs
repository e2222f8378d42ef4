//! Uploads through the API: a video is stored under the library's `uploads/` and
//! indexed; a non-video fails alone with the reason; one over the limit gets 413 and
//! leaves no partial file.

use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::server::{Server, multipart};

#[test]
fn uploads_are_indexed_non_videos_fail_alone_and_big_ones_get_413() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let s = Server::start(&tmp.path().join("data"), &[&lib], &["--max-upload-mb", "1"], None);

    let clip = tmp.path().join("clip.mp4");
    VideoSpec {
        width: 320,
        height: 180,
        ..VideoSpec::new(vec![(Scene::new(Colour::Orange, Shape::Square, Colour::Purple), 2.0)])
    }
    .write(&clip)
    .unwrap();
    let content = std::fs::read(&clip).unwrap();
    assert!(content.len() < 1024 * 1024);
    let (ct, body) = multipart("file", "../../my clip.mp4", &content);
    let r = s.req("POST", "/api/upload", Some((&ct, &body)));
    assert_eq!(r.status, 202, "{}", r.text());
    let up = r.json();
    let saved = up["uploaded"]["path"].as_str().unwrap().to_string();
    assert!(
        saved.starts_with(&lib.canonicalize().unwrap().display().to_string()),
        "{saved}"
    );
    assert!(saved.ends_with("uploads/my clip.mp4"), "{saved}");
    assert_eq!(std::fs::read(&saved).unwrap(), content);
    let job = s.wait_job(up["id"].as_i64().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    let top = &s.get("/api/search?q=a%20orange%20square").json()["results"][0];
    assert_eq!(top["path"], saved);

    // A non-video upload: accepted, its job fails with the reason, nothing else changes.
    let (ct, body) = multipart("file", "notes.mp4", b"these are not video frames\n");
    let r = s.req("POST", "/api/upload", Some((&ct, &body)));
    assert_eq!(r.status, 202);
    let job = s.wait_job(r.json()["id"].as_i64().unwrap());
    assert_eq!(job["state"], "failed");
    assert!(
        job["files"][0]["error"].as_str().unwrap().contains("not a readable"),
        "{job}"
    );
    let videos = s.get("/api/videos").json();
    let indexed = videos["videos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "indexed")
        .count();
    assert_eq!(indexed, 1);
    assert_eq!(
        s.get("/api/search?q=a%20orange%20square").json()["results"][0]["path"],
        saved
    );

    // Over the limit: 413, and no partial file left behind.
    let big = vec![0u8; 1024 * 1024 + 300_000];
    let (ct, body) = multipart("file", "big.mp4", &big);
    let r = s.req("POST", "/api/upload", Some((&ct, &body)));
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["code"], "too_large");
    let left: Vec<_> = std::fs::read_dir(lib.join("uploads"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!left.iter().any(|n| n.contains("big")), "{left:?}");

    // No file field at all.
    let r = s.req(
        "POST",
        "/api/upload",
        Some(("multipart/form-data; boundary=x", b"--x--\r\n")),
    );
    assert_eq!(r.status, 400);
}
