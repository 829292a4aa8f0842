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

/// The document and the components' route tables (`api::routes::Routes`) name the same
/// operations, and an operation is public in one exactly when it is in the other.
#[test]
fn every_declared_route_is_documented_with_its_access() {
    let doc: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    let mut documented = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let public = operation["security"] == serde_json::json!([{}]);
            documented.insert(format!("{} {path}", method.to_uppercase()), public);
        }
    }
    let mut declared = std::collections::BTreeMap::new();
    for routes in [
        user_service::routes(),
        car_service::routes(),
        order_service::routes(),
        cart_service::routes(),
        payment_service::routes(),
        bonus_service::routes(),
        fines_service::routes(),
        support_service::routes(),
        docs_service::routes(),
    ] {
        for route in routes.declared() {
            // `:car_id` in a route is `{car_id}` in the document.
            let path: Vec<String> = route
                .path
                .split('/')
                .map(|segment| match segment.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => segment.to_owned(),
                })
                .collect();
            let name = format!("{} {}", route.method, path.join("/"));
            declared.insert(name, route.public);
        }
    }
    // Swagger UI's own files are served, not documented.
    declared.retain(|name, _| !name.starts_with("GET /docs/"));
    let differently: Vec<_> = declared
        .iter()
        .filter(|(name, public)| documented.get(*name) != Some(public))
        .collect();
    let undeclared: Vec<_> = documented
        .keys()
        .filter(|name| !declared.contains_key(*name))
        .collect();
    assert!(
        differently.is_empty() && undeclared.is_empty(),
        "declared (public?) but not documented so: {differently:?}; \
         documented but not declared: {undeclared:?}"
    );
}

/// Every request body the document shows is one a component parses as that very schema, and
/// each one's documented constraints hold at their bounds (`api::body::disagreements`).
#[test]
fn every_documented_request_body_is_parsed_as_documented() {
    let doc: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    let bodies: Vec<api::body::Documented> = [
        user_service::domain::request_bodies(),
        car_service::domain::request_bodies(),
        order_service::domain::request_bodies(),
        cart_service::domain::request_bodies(),
        payment_service::domain::request_bodies(),
        bonus_service::domain::request_bodies(),
        fines_service::domain::request_bodies(),
        support_service::domain::request_bodies(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                continue;
            }
            // `$ref`, or an optional body: `oneOf: [$ref, null]`.
            let reference = schema["$ref"].as_str().or_else(|| {
                schema["oneOf"]
                    .as_array()
                    .and_then(|branches| branches.iter().find_map(|b| b["$ref"].as_str()))
            });
            let name = reference
                .and_then(|r| r.rsplit('/').next())
                .unwrap_or_else(|| panic!("{method} {path}: a body schema not named: {schema}"));
            let body = bodies
                .iter()
                .find(|body| body.schema.name() == name)
                .unwrap_or_else(|| panic!("{method} {path}: no component parses {name}"));
            assert_eq!(
                &doc["components"]["schemas"][name],
                body.schema.root(),
                "{method} {path}: the document's {name} is not the parser's"
            );
            documented.push(name.to_owned());
        }
    }
    assert!(documented.len() >= 15, "only {documented:?}");
    let mut found = Vec::new();
    for body in &bodies {
        found.extend(api::body::disagreements(body));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A plate is a plate wherever the document takes one (car-service registers it, fines-service
/// is asked about it).
#[test]
fn every_license_plate_has_the_same_pattern() {
    let doc: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    let mut patterns = std::collections::BTreeSet::new();
    let mut stack = vec![&doc];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::Object(object) => {
                if object.get("name").and_then(|n| n.as_str()) == Some("license_plate") {
                    patterns.insert(object["schema"]["pattern"].to_string());
                }
                if let Some(plate) = object.get("license_plate") {
                    if plate.get("pattern").is_some() {
                        patterns.insert(plate["pattern"].to_string());
                    }
                }
                stack.extend(object.values());
            }
            serde_json::Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    assert_eq!(patterns.len(), 1, "{patterns:?}");
}
