//! `detailing up --watch`: when files matching a component's `[component.x.build] watch` globs
//! change, run its build command and swap the new build into the running host. Only that
//! component is reloaded; a build or load that fails leaves the previous version serving.
//! Polls modification times (every 500 ms) rather than using OS notifications, so it behaves
//! the same on every filesystem, including bind mounts in containers.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use runtime::manifest::LoadedManifest;
use runtime::App;
use tokio::sync::watch;

const POLL: Duration = Duration::from_millis(500);

/// A component the watcher looks after.
struct Watched {
    id: String,
    command: String,
    workdir: PathBuf,
    source: PathBuf,
    patterns: Vec<String>,
    fingerprint: u64,
}

/// Watches every component that has `watch` globs until `shutdown`.
pub async fn run(app: Arc<App>, manifest: LoadedManifest, mut shutdown: watch::Receiver<bool>) {
    let mut watched: Vec<Watched> = manifest
        .manifest
        .component
        .iter()
        .filter_map(|(id, decl)| {
            let build = decl.build.as_ref().filter(|b| !b.watch.is_empty())?;
            let patterns: Vec<String> = build
                .watch
                .iter()
                .map(|glob| manifest.dir.join(glob).display().to_string())
                .collect();
            Some(Watched {
                id: id.clone(),
                command: build.command.clone(),
                workdir: build
                    .workdir
                    .as_ref()
                    .map_or(manifest.dir.clone(), |w| manifest.dir.join(w)),
                source: manifest.source_path(decl),
                fingerprint: fingerprint(&patterns),
                patterns,
            })
        })
        .collect();
    tracing::info!(
        components = watched.len(),
        "watching component sources for changes"
    );
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        for component in &mut watched {
            let now = fingerprint(&component.patterns);
            if now == component.fingerprint {
                continue;
            }
            component.fingerprint = now;
            rebuild_and_swap(&app, component).await;
            // The build may have touched watched files (generated code): start from after it.
            component.fingerprint = fingerprint(&component.patterns);
        }
    }
}

async fn rebuild_and_swap(app: &Arc<App>, component: &Watched) {
    let id = component.id.clone();
    tracing::info!(component = %id, "sources changed: rebuilding");
    let started = Instant::now();
    let (command, workdir, source) = (
        component.command.clone(),
        component.workdir.clone(),
        component.source.clone(),
    );
    let app = app.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<u128> {
        build(&command, &workdir)?;
        let wasm =
            std::fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
        Ok(app.swap(&id, &wasm)?.millis)
    })
    .await;
    match outcome {
        Ok(Ok(swap_millis)) => tracing::info!(
            component = %component.id,
            "rebuilt and swapped in {} ms (swap {swap_millis} ms)",
            started.elapsed().as_millis()
        ),
        Ok(Err(error)) => tracing::error!(
            component = %component.id,
            "not swapped, the previous version keeps serving: {error:#}"
        ),
        Err(join) => tracing::error!(component = %component.id, "rebuild task failed: {join}"),
    }
}

/// Runs a build command; its output is kept for the error when it fails.
fn build(command: &str, workdir: &Path) -> Result<()> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(workdir)
        .output()
        .with_context(|| format!("cannot run `{command}`"))?;
    if !output.status.success() {
        bail!(
            "`{command}` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(())
}

/// What the watched files look like now: their paths, sizes and modification times.
fn fingerprint(patterns: &[String]) -> u64 {
    let mut files: Vec<(PathBuf, u64, SystemTime)> = patterns
        .iter()
        .filter_map(|pattern| glob::glob(pattern).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            meta.is_file().then(|| {
                (
                    path,
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                )
            })
        })
        .collect();
    files.sort();
    let mut hasher = DefaultHasher::new();
    files.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_changes_with_a_file_and_not_without() {
        let dir = std::env::temp_dir().join(format!("watch-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/lib.rs"), "fn a() {}").unwrap();
        let patterns = vec![dir.join("src/**/*.rs").display().to_string()];
        let first = fingerprint(&patterns);
        assert_eq!(fingerprint(&patterns), first);
        std::fs::write(dir.join("src/lib.rs"), "fn a() { b() }").unwrap();
        let second = fingerprint(&patterns);
        assert_ne!(second, first);
        std::fs::write(dir.join("src/new.rs"), "").unwrap();
        assert_ne!(fingerprint(&patterns), second);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failing_build_reports_its_output() {
        let error = build("echo broken >&2; exit 3", Path::new(".")).unwrap_err();
        assert!(format!("{error:#}").contains("broken"), "{error:#}");
    }
}
