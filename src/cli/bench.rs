//! `vidseek bench gpu`: the device benchmark's flags to `crate::bench`, its report printed.

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::args::{Global, GpuArgs};
use super::runtime;
use crate::bench;

pub(super) fn bench_gpu(g: &Global, a: &GpuArgs) -> Result<()> {
    if let Some(dir) = &a.prepare {
        let width = (a.height * 16 / 9) & !1;
        let files = bench::prepare_videos(dir, a.files, a.seconds, width, a.height)?;
        println!(
            "rendered {} videos of {} s at {width}x{} into {}",
            files.len(),
            a.seconds,
            a.height,
            dir.display()
        );
        return Ok(());
    }
    if a.batches.is_empty() || a.batches.contains(&0) {
        bail!("--batches takes positive batch sizes, e.g. 256,1024");
    }
    let model = Arc::new(g.load_model()?);
    let scratch = std::env::temp_dir().join(format!("vidseek-bench-{}", std::process::id()));
    let opts = bench::GpuBench {
        batches: a.batches.clone(),
        reps: a.reps,
        videos: a.videos.clone(),
        fps: a.fps,
        scratch: scratch.clone(),
    };
    let report = runtime()?.block_on(bench::gpu(model, &opts));
    let _ = std::fs::remove_dir_all(&scratch);
    let report = report?;
    let text = serde_json::to_string_pretty(&report)?;
    if let Some(out) = &a.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    println!("{text}");
    // A GPU machine's check (`.ci/gpu-run`) accepts no fallback: the report is written,
    // then the command fails naming what ran off the GPU.
    if std::env::var("VIDSEEK_EXPECT_CUDA").is_ok_and(|v| v.trim() == "1") {
        let problems = bench::cuda_problems(&report);
        if !problems.is_empty() {
            bail!(
                "VIDSEEK_EXPECT_CUDA=1, but not everything ran on the GPU:\n  {}\n(unset VIDSEEK_EXPECT_CUDA to \
                 measure with fallbacks, or fix the CUDA/NVDEC setup `vidseek doctor` reports)",
                problems.join("\n  ")
            );
        }
    }
    Ok(())
}
