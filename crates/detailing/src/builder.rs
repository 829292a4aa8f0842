//! `detailing build`: run each component's `[component.x.build] command`, as `spin build` does.
//! A spinner per component on a terminal, one plain line per step in logs (CI stays readable);
//! a command's output is kept and shown only when it fails.

use crate::doctor::{Marks, Status};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use runtime::manifest::LoadedManifest;
use std::io::IsTerminal;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn build_all(manifest: &LoadedManifest) -> Result<()> {
    ensure_rust_targets(&manifest.dir);
    let with_build: Vec<_> = manifest
        .manifest
        .component
        .iter()
        .filter_map(|(id, c)| c.build.as_ref().map(|b| (id, b)))
        .collect();
    let total = with_build.len();
    let live = std::io::stderr().is_terminal();
    let marks = Marks::detect(live);
    let started = Instant::now();
    build_together(manifest, &with_build, live, marks);
    for (n, (id, build)) in with_build.into_iter().enumerate() {
        let workdir = match &build.workdir {
            Some(w) => manifest.dir.join(w),
            None => manifest.dir.clone(),
        };
        let step = Step::start(live, format!("[{}/{total}]", n + 1), id, &build.command);
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&build.command)
            .current_dir(&workdir)
            .stdin(Stdio::null());
        // The output is captured, so cargo would drop its colours; keep them for a person.
        if live && marks.fancy() && std::env::var_os("CARGO_TERM_COLOR").is_none() {
            command.env("CARGO_TERM_COLOR", "always");
        }
        let output = match command.output() {
            Ok(output) => output,
            Err(e) => {
                step.finish(marks, Status::Fail);
                return Err(e).with_context(|| format!("cannot run the build command of `{id}`"));
            }
        };
        if !output.status.success() {
            step.finish(marks, Status::Fail);
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            bail!(
                "building component `{id}` failed ({}); `{}` said:\n{}",
                output.status,
                build.command,
                said.trim_end()
            );
        }
        step.finish(marks, Status::Pass);
    }
    eprintln!(
        "Finished building all Spin components in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The shape of our components' build commands: one package of the workspace for wasm.
const CARGO_WASM_BUILD: &str = "cargo build --profile wasm --target wasm32-wasip1 -p ";

/// When every build command is `cargo build --profile wasm --target wasm32-wasip1 -p <one
/// package>` in the same folder, builds all those packages in one cargo run first. Run one at
/// a time, each component's last step (its LTO link, one codegen unit) keeps one core busy
/// and leaves the other idle; together cargo runs two at once. Each component's own command
/// still runs after, as `spin build` would, finds its build fresh and reports it; a failure
/// here is left for that command to report, with the component it belongs to.
fn build_together(
    manifest: &LoadedManifest,
    builds: &[(&String, &runtime::manifest::BuildDecl)],
    live: bool,
    marks: Marks,
) {
    let packages: Option<Vec<&str>> = builds
        .iter()
        .map(|(_, build)| {
            let package = build.command.strip_prefix(CARGO_WASM_BUILD)?;
            let one_package = !package.is_empty() && !package.contains(char::is_whitespace);
            (build.workdir.is_none() && one_package).then_some(package)
        })
        .collect();
    let Some(packages) = packages.filter(|p| p.len() > 1) else {
        return;
    };
    // The components' own command, with every package: run as theirs are, through `sh -c`.
    let together = format!("{CARGO_WASM_BUILD}{}", packages.join(" -p "));
    let step = Step::start(live, "[*]".into(), "all components", &together);
    let built = Command::new("sh")
        .arg("-c")
        .arg(&together)
        .current_dir(&manifest.dir)
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|output| output.status.success());
    step.finish(marks, if built { Status::Pass } else { Status::Warn });
}

/// One component's build as the user sees it.
struct Step {
    counter: String,
    id: String,
    started: Instant,
    spinner: Option<ProgressBar>,
}

impl Step {
    fn start(live: bool, counter: String, id: &str, command: &str) -> Self {
        let spinner = if live {
            let spinner = ProgressBar::new_spinner()
                .with_style(
                    ProgressStyle::with_template("{spinner} {prefix} building {msg} ... {elapsed}")
                        .expect("a valid template"),
                )
                .with_prefix(counter.clone())
                .with_message(id.to_owned());
            spinner.enable_steady_tick(Duration::from_millis(100));
            Some(spinner)
        } else {
            eprintln!("{counter} building {id} with `{command}` ...");
            None
        };
        Self {
            counter,
            id: id.to_owned(),
            started: Instant::now(),
            spinner,
        }
    }

    fn finish(self, marks: Marks, status: Status) {
        let (counter, id) = (&self.counter, &self.id);
        let seconds = self.started.elapsed().as_secs_f64();
        let Some(spinner) = &self.spinner else {
            match status {
                Status::Pass => eprintln!("{counter} built {id} in {seconds:.1}s"),
                _ => eprintln!("{counter} FAILED {id} after {seconds:.1}s"),
            }
            return;
        };
        spinner.finish_and_clear();
        // On a terminal the symbol stays; NO_COLOR only takes its colour away.
        let mark = match (marks.fancy(), status) {
            (true, status) => marks.mark(status),
            (false, Status::Pass) => "✓",
            (false, _) => "✗",
        };
        eprintln!("{mark} {counter} {id} {seconds:.1}s");
    }
}

/// What `rust-toolchain.toml` pins: the channel and the targets the build needs.
#[derive(Debug, Default, PartialEq)]
pub struct Toolchain {
    pub channel: Option<String>,
    pub targets: Vec<String>,
}

impl Toolchain {
    /// The app's `rust-toolchain.toml`, if it has a readable one.
    pub fn read(app_dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(app_dir.join("rust-toolchain.toml")).ok()?;
        Some(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let Ok(value) = text.parse::<toml::Table>() else {
            return Self::default();
        };
        let Some(toolchain) = value.get("toolchain") else {
            return Self::default();
        };
        Self {
            channel: toolchain
                .get("channel")
                .and_then(|c| c.as_str())
                .map(str::to_string),
            targets: toolchain
                .get("targets")
                .and_then(|t| t.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

/// rustup installs a `rust-toolchain.toml` toolchain on first use, but does not add its
/// `targets` to a toolchain that is already installed: add them, so a fresh machine builds.
fn ensure_rust_targets(app_dir: &Path) {
    let Some(Toolchain { targets, .. }) = Toolchain::read(app_dir) else {
        return;
    };
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

#[cfg(test)]
mod tests {
    use super::Toolchain;

    #[test]
    fn reads_the_channel_and_targets_of_rust_toolchain_toml() {
        let text = "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"wasm32-wasip1\"]\n";
        assert_eq!(
            Toolchain::parse(text),
            Toolchain {
                channel: Some("1.95.0".into()),
                targets: vec!["wasm32-wasip1".into()],
            }
        );
        assert!(Toolchain::parse("[toolchain]\nchannel = \"x\"")
            .targets
            .is_empty());
        assert_eq!(Toolchain::parse("not toml ["), Toolchain::default());
    }
}
