//! The HTTP API speaks the same query language: errors, the cut-off, `video`, groups,
//! more like a frame, an uploaded picture, eval.

use serde_json::json;
use vidseek::{Colour, Scene, Shape};

use super::{library, scene_of, write_ppm};
use crate::common::assert::hit_is;
use crate::common::server::{Server, multipart, request};

#[test]
fn the_api_speaks_the_same_language() {
    let lib = library();
    let tmp = tempfile::tempdir().unwrap();
    // A copy of the data folder: the server may write (jobs, a checkpoint).
    let data = tmp.path().join("data");
    crate::common::copy_library(&lib.data, &data);
    let s = Server::start(&data, &[&lib.root], &[], None);
    let r = s.get("/api/search?q=a%20%22star&k=5");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["message"].as_str().unwrap().contains("character 3"),
        "{}",
        r.text()
    );
    let r = s.get("/api/search?q=-star&k=5");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = s.get("/api/search?q=a%20purple%20circle&k=5").json();
    assert!(
        r["results"].as_array().unwrap().is_empty() && r["withheld"].as_u64().unwrap() > 0,
        "{r}"
    );
    let r = s.get("/api/search?q=a%20purple%20circle&k=5&min_score=off").json();
    assert_eq!(r["results"].as_array().unwrap().len(), 5, "{r}");
    // The `video` parameter restricts like `video:`.
    let beach_id = s.video_id("beach.webm");
    let r = s
        .get(&format!(
            "/api/search?q=a%20red%20circle&k=20&min_score=off&video={beach_id}"
        ))
        .json();
    let list = r["results"].as_array().unwrap();
    assert!(
        !list.is_empty() && list.iter().all(|x| x["video_id"].as_i64() == Some(beach_id)),
        "{r}"
    );
    let r = s
        .get("/api/search?q=a%20red%20circle%20path:holiday&k=5&group=video")
        .json();
    let groups = r["groups"].as_array().unwrap();
    assert!(
        !groups.is_empty() && groups.iter().all(|g| g["path"].as_str().unwrap().contains("holiday")),
        "{r}"
    );
    // More like this, and an uploaded picture.
    let fid = r["results"][0]["frame_id"].as_i64().unwrap();
    let like = s.get(&format!("/api/search?frame={fid}&k=3")).json();
    assert!(!like["results"].as_array().unwrap().is_empty(), "{like}");
    let pic = tmp.path().join("p.ppm");
    write_ppm(&pic, &Scene::new(Colour::Red, Shape::Circle, Colour::Blue));
    let (ct, body) = multipart("image", "p.ppm", &std::fs::read(&pic).unwrap());
    let r = request(s.port, "POST", "/api/search", &[], Some((ct.as_str(), &body)));
    assert_eq!(r.status, 200, "{}", r.text());
    let (bp, bs) = scene_of(Colour::Red, Shape::Circle, Colour::Blue);
    assert!(hit_is(&r.json()["results"][0], &bp, &bs), "{}", r.text());
    let (ct, body) = multipart("image", "junk.png", b"not a picture");
    let r = request(s.port, "POST", "/api/search", &[], Some((ct.as_str(), &body)));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("junk.png"), "{}", r.text());
    // Eval over HTTP: the same report.
    let truth = json!([{"query": "a yellow circle", "path": "video-0.mp4", "start": 30.0, "end": 33.0},
                       {"query": "a red circle on a blue background", "path": "holiday/beach.webm", "start": bs.start, "end": bs.end}]);
    let r = s.post_json("/api/eval", &truth);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    assert_eq!(r["recall_at_1"].as_f64(), Some(0.5), "{r}");
    assert_eq!(r["misses"].as_array().unwrap().len(), 1, "{r}");
    let r = s.post_json("/api/eval", &json!([{"query": "x", "path": "y", "start": 2, "end": 1}]));
    assert_eq!(r.status, 400, "{}", r.text());
}
