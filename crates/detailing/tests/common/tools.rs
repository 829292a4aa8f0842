//! Test tools: the Python tools pinned in tests/requirements.txt, installed on first use into
//! one virtualenv under target/ shared by every test binary (nothing outside the checkout),
//! and Debian's chromium for the browser test, which must already be installed.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::repo_root;

/// Runs `command`, panicking with its output unless it succeeds.
pub fn run(command: &mut Command, what: &str) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Holds `<path>` (made with create_new, so one process at a time) until dropped. A lock
/// older than ten minutes is taken to be left by a killed run.
struct FileLock(PathBuf);

impl FileLock {
    fn acquire(path: PathBuf) -> Self {
        let started = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => return Self(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(600));
                    if stale {
                        let _ = std::fs::remove_file(&path);
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(900),
                        "{} stays locked",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot lock {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The virtualenv with tests/requirements.txt installed; made again when that file changes.
pub fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let requirements = repo_root().join("tests/requirements.txt");
        let wanted = std::fs::read(&requirements).expect("tests/requirements.txt");
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let venv = tmp.join("test-tools-venv");
        let _lock = FileLock::acquire(tmp.join("test-tools-venv.lock"));
        // Written last: a venv without it (an interrupted install) is made again.
        let stamp = venv.join("installed-requirements.txt");
        if std::fs::read(&stamp).ok().as_deref() == Some(&wanted[..]) {
            return venv;
        }
        let _ = std::fs::remove_dir_all(&venv);
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        );
        run(
            Command::new(venv.join("bin/python"))
                .args(["-m", "pip", "install", "--disable-pip-version-check"])
                .args(["--no-input", "--quiet", "-r"])
                .arg(&requirements),
            "pip install -r tests/requirements.txt",
        );
        std::fs::write(&stamp, &wanted).unwrap();
        venv
    })
}

/// Debian's chromium, for the browser test. A test does not install system packages: when it is
/// missing the test fails naming the command that installs it (.ci/run runs that command).
pub fn chromium() -> &'static Path {
    static CHROMIUM: OnceLock<PathBuf> = OnceLock::new();
    CHROMIUM.get_or_init(|| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "chromium is not installed (the browser test drives Debian's headless chromium); \
                     install it with `apt-get install --no-install-recommends chromium` as root \
                     (.ci/run does)"
                )
            })
    })
}
