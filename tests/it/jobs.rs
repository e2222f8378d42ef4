//! Jobs through the API: what `/api/jobs` lists (state, kind, each file's outcome),
//! the library roots a job may index, and canceling a running job.

use serde_json::json;
use vidseek::{Colour, Scene, Shape, VideoSpec};

use crate::common::footage::render;
use crate::common::server::Server;

#[test]
fn a_job_indexes_any_library_root_and_lists_each_files_outcome() {
    let tmp = tempfile::tempdir().unwrap();
    let (lib1, lib2) = (tmp.path().join("one"), tmp.path().join("two"));
    std::fs::create_dir_all(&lib1).unwrap();
    std::fs::create_dir_all(&lib2).unwrap();
    render(
        &lib2.join("x.mp4"),
        vec![(Scene::new(Colour::Yellow, Shape::Star, Colour::Purple), 3.0)],
    );
    let outside = tmp.path().join("outside.mp4");
    render(
        &outside,
        vec![(Scene::new(Colour::Yellow, Shape::Star, Colour::Purple), 2.0)],
    );
    let s = Server::start(&tmp.path().join("data"), &[&lib1, &lib2], &[], None);

    // Several roots: the second one is indexable, a path outside both is refused.
    let r = s.post_json("/api/index", &json!({"path": lib2}));
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    s.wait_for(120, "the job", |s| {
        s.get(&format!("/api/jobs/{id}")).json()["state"] == "succeeded"
    });
    let r = s.post_json("/api/index", &json!({"path": outside}));
    assert_eq!(r.status, 403, "{}", r.text());

    // /api/jobs: the job with its state, counts and each file's outcome.
    let jobs = s.get("/api/jobs").json();
    let job = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"].as_i64() == Some(id))
        .unwrap_or_else(|| panic!("{jobs}"));
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["kind"], "index", "{job}");
    let files = job["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{job}");
    assert!(
        files[0]["path"].as_str().unwrap().ends_with("two/x.mp4") && files[0]["state"] == "indexed",
        "{job}"
    );
}

#[test]
fn a_running_job_can_be_canceled_and_leaves_the_library_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    for i in 0..3 {
        VideoSpec {
            width: 1280,
            height: 720,
            ..VideoSpec::new(vec![
                (Scene::new(Colour::ALL[i], Shape::Triangle, Colour::White), 10.0),
                (Scene::new(Colour::Black, Shape::Star, Colour::ALL[i + 1]), 10.0),
            ])
        }
        .write(&lib.join(format!("long-{i}.mp4")))
        .unwrap();
    }
    let s = Server::start(&tmp.path().join("data"), &[&lib], &[], None);
    let id = s.post_json("/api/index", &json!({"path": lib})).json()["id"]
        .as_i64()
        .unwrap();
    s.wait_for(60, "the job to run", |s| {
        s.get(&format!("/api/jobs/{id}")).json()["state"] == "processing"
    });
    let r = s.req("DELETE", &format!("/api/jobs/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["canceled"], true, "{}", r.text());
    s.wait_for(60, "the job to stop", |s| {
        s.get(&format!("/api/jobs/{id}")).json()["state"] == "canceled"
    });
    let job = s.get(&format!("/api/jobs/{id}")).json();
    let indexed = job["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "indexed")
        .count();
    assert!(indexed < 3, "canceled before the end: {job}");
    // What was finished stays; store and indexes agree.
    let h = s.get("/api/health?deep=true").json();
    assert_eq!(h["consistency"]["agree"], true, "{h}");
    let listed = s.get("/api/videos").json()["videos"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["status"] == "indexed")
        .count();
    assert_eq!(listed, indexed, "{job}");
}
