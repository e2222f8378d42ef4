//! The progress bar of a long command (`index`, `model use`, the demo's indexing):
//! the jobs' progress events drawn on stderr, nothing at all with `--json`.

use std::sync::Arc;

use super::output::Output;
use crate::jobs::{self, Outcome, Progress};

/// A progress bar over the seconds of video to index.
pub(super) fn progress_bar(out: Output) -> (jobs::ProgressSink, Option<indicatif::ProgressBar>) {
    if out.is_json() {
        return (Arc::new(|_| {}), None);
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:30}] {percent:>3}% {msg} ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let b = bar.clone();
    let state = std::sync::Mutex::new((0usize, 0usize, std::time::Instant::now()));
    let sink: jobs::ProgressSink = Arc::new(move |p: Progress| {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            Progress::Planned {
                files,
                to_index,
                video_seconds,
                ..
            } => {
                b.set_length((video_seconds * 10.0).ceil().max(1.0) as u64);
                b.set_message(format!("{to_index} of {files} files to index"));
                st.0 = to_index;
                st.2 = std::time::Instant::now();
            }
            Progress::Frames {
                frames, video_seconds, ..
            } => {
                b.set_position((video_seconds * 10.0) as u64);
                let rate = frames as f64 / st.2.elapsed().as_secs_f64().max(1e-3);
                b.set_message(format!(
                    "files {}/{} | {frames} frames | {rate:.1} frames/s",
                    st.1, st.0
                ));
            }
            Progress::FileDone { report, .. } => {
                st.1 += 1;
                if let Outcome::Failed { error } = &report.outcome {
                    b.println(format!("failed: {}: {error}", report.path));
                }
            }
            Progress::Switch {
                model,
                frames_done,
                frames_total,
                ..
            } => {
                b.set_length(frames_total.max(1) as u64);
                b.set_position(frames_done as u64);
                b.set_message(format!(
                    "re-embedding with {model}: {frames_done}/{frames_total} frames"
                ));
            }
            Progress::FileStarted { .. } | Progress::Finished { .. } | Progress::Switched { .. } => {}
        }
    });
    (sink, Some(bar))
}
