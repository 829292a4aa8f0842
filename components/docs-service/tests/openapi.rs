//! `openapi.json` is generated, never edited: this test builds the document from every
//! component's `openapi()` and fails when the committed file differs. To regenerate it:
//!
//!     UPDATE_OPENAPI=1 cargo test --release -p docs-service --test openapi

use std::path::Path;

fn generated() -> String {
    let doc = api::openapi::document([
        user_service::openapi(),
        car_service::openapi(),
        order_service::openapi(),
        cart_service::openapi(),
        payment_service::openapi(),
        bonus_service::openapi(),
        fines_service::openapi(),
        support_service::openapi(),
        docs_service::openapi(),
    ]);
    let mut json = serde_json::to_string_pretty(&doc).expect("the document serializes");
    json.push('\n');
    json
}

#[test]
fn openapi_json_is_generated_from_the_current_types() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let fresh = generated();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &fresh).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: the components' types or annotations changed. Regenerate it with \
         `UPDATE_OPENAPI=1 cargo test --release -p docs-service --test openapi` and commit it.",
        path.display()
    );
}

#[test]
fn every_operation_says_what_it_answers_and_needs() {
    let doc: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut operation_ids = std::collections::BTreeSet::new();
    assert!(paths.len() > 30, "only {} paths", paths.len());
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{} {path}", method.to_uppercase());
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{name} documents no success"
            );
            // Public operations may still answer 401 for credentials of their own (login's
            // password, the relay's token); everything else needs the bearer token.
            let public = operation["security"] == serde_json::json!([{}]);
            assert!(
                public || responses.contains_key("401"),
                "{name} needs a token but documents no 401"
            );
            assert!(
                operation["tags"].as_array().is_some_and(|t| t.len() == 1),
                "{name} has one tag"
            );
            assert!(operation["summary"].is_string(), "{name} has a summary");
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                operation_ids.insert(id.to_owned()),
                "{name}: operationId {id:?} is not unique"
            );
            for (status, response) in responses {
                if !status.starts_with('2') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{name} {status} is not in the error shape"
                    );
                }
            }
        }
    }
}
