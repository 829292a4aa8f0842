//! `detailing build`: run each component's `[component.x.build] command`, as `spin build` does.

use anyhow::{bail, Context, Result};
use runtime::manifest::LoadedManifest;
use std::process::Command;
use std::time::Instant;

pub fn build_all(manifest: &LoadedManifest) -> Result<()> {
    let with_build: Vec<_> = manifest
        .manifest
        .component
        .iter()
        .filter_map(|(id, c)| c.build.as_ref().map(|b| (id, b)))
        .collect();
    let total = with_build.len();
    let started = Instant::now();
    for (n, (id, build)) in with_build.into_iter().enumerate() {
        let workdir = match &build.workdir {
            Some(w) => manifest.dir.join(w),
            None => manifest.dir.clone(),
        };
        eprintln!(
            "[{}/{total}] Building component {id} with `{}`",
            n + 1,
            build.command
        );
        let step = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg(&build.command)
            .current_dir(&workdir)
            .status()
            .with_context(|| format!("cannot run the build command of `{id}`"))?;
        if !status.success() {
            bail!("building component `{id}` failed ({status})");
        }
        eprintln!(
            "[{}/{total}] Built {id} in {:.1}s",
            n + 1,
            step.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "Finished building all Spin components in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
