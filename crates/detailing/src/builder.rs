//! `detailing build`: run each component's `[component.x.build] command`, as `spin build` does.

use anyhow::{bail, Context, Result};
use runtime::manifest::LoadedManifest;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

pub fn build_all(manifest: &LoadedManifest) -> Result<()> {
    ensure_rust_targets(&manifest.dir);
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

/// rustup installs a `rust-toolchain.toml` toolchain on first use, but does not add its
/// `targets` to a toolchain that is already installed: add them, so a fresh machine builds.
fn ensure_rust_targets(app_dir: &Path) {
    let Ok(text) = std::fs::read_to_string(app_dir.join("rust-toolchain.toml")) else {
        return;
    };
    let targets = toolchain_targets(&text);
    if targets.is_empty() {
        return;
    }
    let status = Command::new("rustup")
        .args(["target", "add"])
        .args(&targets)
        .current_dir(app_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!(
            "warning: could not run `rustup target add {}`",
            targets.join(" ")
        );
    }
}

fn toolchain_targets(text: &str) -> Vec<String> {
    let Ok(value) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    value
        .get("toolchain")
        .and_then(|t| t.get("targets"))
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_targets_of_rust_toolchain_toml() {
        let text = "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip1\"]\n";
        assert_eq!(super::toolchain_targets(text), ["wasm32-wasip1"]);
        assert!(super::toolchain_targets("[toolchain]\nchannel = \"x\"").is_empty());
    }
}
