//! The machine set-up script the suite runs after (`.ci/setup --test`).

use crate::common;

#[test]
fn setup_is_idempotent() {
    // The suite runs after `.ci/setup --test`: a second run finds everything in place.
    let out = std::process::Command::new("bash")
        .arg(common::root().join(".ci/setup"))
        .arg("--test")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "setup: done\n",
        "a second run installed something"
    );
}
