//! Swagger UI's files come from the npm registry at build time: `ui/package-lock.json` pins
//! `swagger-ui-dist` (version and integrity), `npm ci` fetches it into `ui/node_modules` when
//! that version is not there yet, and the component embeds the files it serves. Nothing is
//! fetched at run time.

use std::path::Path;
use std::process::Command;

fn main() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let dist = ui.join("node_modules/swagger-ui-dist");
    println!("cargo:rerun-if-changed=ui/package.json");
    println!("cargo:rerun-if-changed=ui/package-lock.json");
    println!("cargo:rerun-if-changed=ui/node_modules/swagger-ui-dist/package.json");

    let wanted = pinned_version(&ui.join("package.json"));
    if installed_version(&dist).as_deref() != Some(wanted.as_str()) {
        // --ignore-scripts: swagger-ui-dist's dependency @scarf/scarf would report the install.
        let status = Command::new("npm")
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund"])
            .current_dir(&ui)
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
    }
    println!("cargo:rustc-env=SWAGGER_UI_DIST={}", dist.display());
    println!("cargo:rustc-env=SWAGGER_UI_VERSION={wanted}");
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
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
