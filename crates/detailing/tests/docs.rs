//! The API's documentation as a user meets it: `GET /openapi.json` from the running app is
//! valid OpenAPI 3.1 (openapi-spec-validator, from tests/requirements.txt), documents exactly
//! the routes the components serve, and `GET /docs` renders it in a real browser (Debian's
//! chromium, headless).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::tools::{chromium, run, venv};
use common::{repo_root, trigger_routes, ServerConfig, TestServer, METHODS, SUFFIXES};
use serde_json::Value;

fn served_document(server: &TestServer) -> Value {
    let (status, doc) = server.call("GET", "/openapi.json", None, None);
    assert_eq!(status, 200, "{doc}");
    doc
}

/// Whether `path` fits the document's template (`{name}` matches one segment). A trailing
/// slash is the same route to the components' router (`/api/cars/` is `/api/cars`).
fn fits(template: &str, path: &str) -> bool {
    let path = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed,
        _ => path,
    };
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}') && !p.is_empty()))
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.to_uppercase(), path.clone()));
        }
    }
    operations
}

/// No route answers for this method and path: the router's JSON 404 `not_found`, or 405.
fn unrouted(status: u16, answer: &Value) -> bool {
    status == 405 || (status == 404 && answer["error"]["code"] == "not_found")
}

#[test]
fn every_route_the_app_serves_is_documented_and_nothing_else() {
    let server = TestServer::start(ServerConfig::app());
    let doc = served_document(&server);
    let operations = documented(&doc);
    let id = uuid::Uuid::new_v4().to_string();

    // Each of spin.toml's routes leads to documented operations.
    for route in trigger_routes() {
        let prefix = route.strip_suffix("/...").unwrap_or(&route);
        assert!(
            operations.iter().any(|(_, path)| path.starts_with(prefix)),
            "spin.toml routes {route}, but the document has nothing under it"
        );
    }

    // Walking the routes without a token: whatever is routed (401, 200, 422, ...) is in the
    // document with this method.
    let mut routed = 0;
    for route in trigger_routes() {
        let prefix = route.strip_suffix("/...").unwrap_or(&route);
        let suffixes: &[&str] = if route.ends_with("/...") {
            SUFFIXES
        } else {
            &[""]
        };
        for suffix in suffixes {
            let path = format!("{prefix}{}", suffix.replace("{id}", &id));
            for method in METHODS {
                let (status, answer) =
                    server.call(method, &path, None, Some(&serde_json::json!({})));
                if unrouted(status, &answer) {
                    continue;
                }
                routed += 1;
                assert!(
                    operations
                        .iter()
                        .any(|(m, template)| m == method && fits(template, &path)),
                    "{method} {path} is served ({status}: {answer}) but not documented"
                );
            }
        }
    }
    assert!(routed > 30, "only {routed} routed requests");

    // And every documented operation is routed.
    for (method, template) in &operations {
        let path = template
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    id.as_str()
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let (status, answer) = server.call(method, &path, None, Some(&serde_json::json!({})));
        assert!(
            !unrouted(status, &answer),
            "{method} {template} is documented, but {path} answers {status}: {answer}"
        );
    }
}

#[test]
fn the_served_document_is_valid_openapi_3_1_and_the_generated_one() {
    let server = TestServer::start(ServerConfig::app());
    let doc = served_document(&server);
    assert_eq!(doc["openapi"], "3.1.0");
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("components/docs-service/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(doc, committed, "the component serves a stale document");

    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = run(
        Command::new(venv().join("bin/openapi-spec-validator")).arg(&file),
        "openapi-spec-validator",
    );
    let _ = std::fs::remove_file(&file);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("OK"), "openapi-spec-validator said: {said}");
}

#[test]
fn swagger_ui_renders_every_operation_in_a_browser() {
    let server = TestServer::start(ServerConfig::app());
    let operations = documented(&served_document(&server));
    let profile = tempdir("chromium-profile");
    // The flags our machines need for a headless chromium with no network beyond loopback;
    // the virtual time budget lets Swagger UI fetch /openapi.json and render it.
    let out = run(
        Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=30000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(server.url("/docs")),
        "chromium --headless --dump-dom /docs",
    );
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("Car detailing platform"),
        "the document's title is not rendered:\n{}",
        &dom[..dom.len().min(2000)]
    );
    let rendered = dom.matches("class=\"opblock opblock-").count();
    assert_eq!(
        rendered,
        operations.len(),
        "Swagger UI rendered {rendered} operations of {}",
        operations.len()
    );
    for path in ["/api/cars/{car_id}", "/api/payments", "/api/users/login"] {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "{path} is not rendered"
        );
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
