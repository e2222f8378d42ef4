//! Pictures and frames as queries: a picture alone, a picture with text, more like a
//! frame (never itself), and the errors a file that is not a picture gets.

use vidseek::{Colour, Scene, Shape};

use super::{library, results, scene_of, search, write_ppm};
use crate::common::assert::hit_is;
use crate::common::cli::{stderr, vs};

#[test]
fn pictures_and_frames_search_like_text() {
    let lib = library();
    let tmp = tempfile::tempdir().unwrap();
    let pic = tmp.path().join("star.ppm");
    let green_star = lib
        .scenes
        .iter()
        .find(|(_, s)| {
            s.scene
                .shape
                .is_some_and(|(sh, c)| sh == Shape::Star && c == Colour::Green)
        })
        .cloned()
        .unwrap();
    write_ppm(&pic, &green_star.1.scene);
    let res = search(&["--image", pic.to_str().unwrap(), "-k", "3"]);
    assert!(hit_is(&results(&res)[0], &green_star.0, &green_star.1), "{res}");
    // Text and picture together: the picture alone finds the red circles on yellow; the
    // text moves the answer to the one on blue.
    let (blue_path, blue) = scene_of(Colour::Red, Shape::Circle, Colour::Blue);
    let on_yellow = Scene::new(Colour::Red, Shape::Circle, Colour::Yellow);
    let red = tmp.path().join("red.ppm");
    write_ppm(&red, &on_yellow);
    let alone = search(&["--image", red.to_str().unwrap(), "--min-score", "off", "-k", "3"]);
    assert!(
        lib.scenes
            .iter()
            .any(|(p, s)| s.scene.same_content(&on_yellow) && hit_is(&results(&alone)[0], p, s)),
        "{alone}"
    );
    let res = search(&[
        "a circle on a blue background",
        "--image",
        red.to_str().unwrap(),
        "--min-score",
        "off",
    ]);
    assert!(hit_is(&results(&res)[0], &blue_path, &blue), "{res}");
    // More like this frame: its near duplicate in the other video, never itself.
    let (v0, yellow_in_v0) = lib
        .scenes
        .iter()
        .find(|(p, s)| p.to_str().unwrap().contains("video-") && s.scene.same_content(&on_yellow))
        .cloned()
        .unwrap();
    let seed = search(&["a red circle on a yellow background", "--min-score", "off", "-k", "10"]);
    let src = results(&seed)
        .iter()
        .find(|r| hit_is(r, &v0, &yellow_in_v0))
        .unwrap_or_else(|| panic!("{seed}"));
    let fid = src["frame_id"].as_i64().unwrap().to_string();
    let res = search(&["--frame", &fid, "-k", "5"]);
    let (beach, dup) = lib
        .scenes
        .iter()
        .find(|(p, s)| p.ends_with("holiday/beach.webm") && s.scene.same_content(&on_yellow))
        .cloned()
        .unwrap();
    assert!(hit_is(&results(&res)[0], &beach, &dup), "{res}");
    assert!(
        !results(&res).iter().any(|r| hit_is(r, &v0, &yellow_in_v0)),
        "the frame's own moment is left out: {res}"
    );
    // A file that is not a picture: a clear error naming it, exit 2.
    let bad = tmp.path().join("notes.png");
    std::fs::write(&bad, b"these are not pixels").unwrap();
    let out = vs(&lib.data, &["search", "--image", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("notes.png"), "{}", stderr(&out));
    let out = vs(&lib.data, &["search", "--frame", "99999999"]);
    assert!(
        !out.status.success() && stderr(&out).contains("frame 99999999"),
        "{}",
        stderr(&out)
    );
}
