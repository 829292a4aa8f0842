//! Swagger UI's files come from the npm registry at build time: `ui/package-lock.json` pins
//! `swagger-ui-dist` (version and integrity), `npm ci` fetches it into `ui/node_modules`, and
//! the component embeds the files it serves. Nothing is fetched at run time. `npm ci` runs only
//! when `ui/node_modules` does not hold what the lock file names (npm records what it installed
//! in `ui/node_modules/.package-lock.json`); otherwise this script does nothing and prints
//! nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn main() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let dist = ui.join("node_modules/swagger-ui-dist");
    println!("cargo:rerun-if-changed=ui/package.json");
    println!("cargo:rerun-if-changed=ui/package-lock.json");
    println!("cargo:rerun-if-changed=ui/node_modules/.package-lock.json");
    println!("cargo:rerun-if-changed=ui/node_modules/swagger-ui-dist/package.json");

    let wanted = pinned_version(&ui.join("package.json"));
    let locked = packages(&ui.join("package-lock.json")).expect("ui/package-lock.json");
    let installed = ui.join("node_modules/.package-lock.json");
    let up_to_date = packages(&installed).as_ref() == Some(&locked)
        && installed_version(&dist).as_deref() == Some(wanted.as_str());
    if !up_to_date {
        // --ignore-scripts: swagger-ui-dist's dependency @scarf/scarf would report the install.
        // npm's output goes to stderr: this script's stdout is for cargo's directives.
        let status = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .current_dir(&ui)
            .stdout(std::io::stderr())
            .status()
            .unwrap_or_else(|error| {
                panic!(
                    "docs-service needs npm (Node.js) to fetch swagger-ui-dist {wanted} from the \
                     npm registry: {error}"
                )
            });
        assert!(
            status.success(),
            "`npm ci` in {} failed: {status}",
            ui.display()
        );
        assert_eq!(
            installed_version(&dist).as_deref(),
            Some(wanted.as_str()),
            "npm ci did not install swagger-ui-dist {wanted}"
        );
        assert_eq!(
            packages(&installed).as_ref(),
            Some(&locked),
            "npm ci did not install what ui/package-lock.json names"
        );
    }
    println!("cargo:rustc-env=SWAGGER_UI_DIST={}", dist.display());
    println!("cargo:rustc-env=SWAGGER_UI_VERSION={wanted}");
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// The packages a lock file names under node_modules/, each with its version and integrity:
/// what `npm ci` installs from `package-lock.json`, or what it installed, from the
/// `node_modules/.package-lock.json` it writes.
fn packages(lock: &Path) -> Option<BTreeMap<String, (Value, Value)>> {
    let lock = read_json(lock)?;
    let packages = lock["packages"].as_object()?;
    Some(
        packages
            .iter()
            .filter(|(path, _)| path.starts_with("node_modules/"))
            .map(|(path, package)| {
                let pin = (package["version"].clone(), package["integrity"].clone());
                (path.clone(), pin)
            })
            .collect(),
    )
}

fn pinned_version(package_json: &Path) -> String {
    read_json(package_json)
        .and_then(|package| {
            package["dependencies"]["swagger-ui-dist"]
                .as_str()
                .map(str::to_owned)
        })
        .expect("ui/package.json pins swagger-ui-dist to an exact version")
}

fn installed_version(dist: &Path) -> Option<String> {
    read_json(&dist.join("package.json"))?["version"]
        .as_str()
        .map(str::to_owned)
}
