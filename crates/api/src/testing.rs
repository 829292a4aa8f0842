//! Native tests of a component's router. Requests that are answered before any Spin import is
//! touched (routing, 401 before the secret is read, 405, body validation) run without a host;
//! a handler that reaches for the host instead fails the test loudly.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use serde_json::Value;
use spin_sdk::http::{Method, Request, Response, Router};

use crate::routes::{matches, Route, Routes, METHODS};

/// A request to `path` on the listener's address, as Spin presents it.
pub fn request(method: Method, path: &str, body: &str) -> Request {
    let mut request = Request::new(method, format!("http://127.0.0.1:3000{path}"));
    *request.body_mut() = body.as_bytes().to_vec();
    request
}

/// Runs `request` through `router` to its answer.
pub fn send(router: &Router, request: Request) -> Response {
    let mut future = std::pin::pin!(router.handle_async(request));
    let Poll::Ready(response) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    else {
        panic!("the handler waited on the host");
    };
    response
}

/// Runs `request` through `router` to its answer, which must be JSON.
pub fn respond(router: &Router, request: Request) -> Response {
    let response = send(router, request);
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/json")
    );
    response
}

/// `method path` with `body`: the status, the `Allow` header and the JSON answer.
pub fn call(
    router: &Router,
    method: Method,
    path: &str,
    body: &str,
) -> (u16, Option<String>, Value) {
    let response = respond(router, request(method, path, body));
    let json = serde_json::from_slice(response.body()).expect("a JSON body");
    (*response.status(), header(&response, "allow"), json)
}

/// A response header as text.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .header(name)
        .and_then(|value| value.as_str())
        .map(str::to_owned)
}

/// The request body `T` documents is the one `parse` reads: `T`'s example is accepted, and
/// leaving out any property the schema calls required is refused naming that property.
pub fn assert_documents_request<T: utoipa::ToSchema>(
    parse: impl Fn(&crate::json::Object) -> Result<(), crate::FieldErrors>,
) {
    let example = crate::openapi::example_of::<T>();
    if let Err(errors) = parse(&example) {
        panic!("{}'s example is refused: {errors:?}", T::name());
    }
    for field in crate::openapi::required_of::<T>() {
        let mut without = example.clone();
        without.remove(&field);
        match parse(&without) {
            Ok(()) => panic!(
                "{} documents {field} as required, but it is optional",
                T::name()
            ),
            Err(errors) => assert!(
                errors.as_slice().iter().any(|error| error.field == field),
                "{} without {field}: {errors:?}",
                T::name()
            ),
        }
    }
}

/// What a `:name` segment is filled with: a well-formed id, and one that is not.
const SAMPLES: [&str; 2] = ["3fa85f64-5717-4562-b3fc-2c963f66afa6", "not-a-uuid"];

/// Walks a component's route table natively and checks what every component answers before
/// it reaches the host:
///
/// - every route not marked public answers 401 `missing_token` with a `Bearer` challenge
///   without a token, before reading a query or body that would be refused (`?limit=%`,
///   `{not json`);
/// - every declared path answers 405 `method_not_allowed` to each method not declared on it,
///   with `Allow` naming exactly the declared ones, also where another route's pattern
///   would match the path for that method;
/// - paths under the component's base that no route matches (a child or a parent of a
///   declared path, a sibling under the base) answer 404 `not_found`.
///
/// Each `:name` is tried with a UUID and with a non-UUID, each path with and without a
/// trailing slash. Every answer must be JSON.
pub fn assert_routes(routes: Routes) {
    let declared = routes.declared().to_vec();
    let base = routes.base().to_owned();
    let router = routes.into_router();
    let answer = |method: &Method, path: &str, body: &str| {
        let response = respond(&router, request(method.clone(), path, body));
        let json: Value = serde_json::from_slice(response.body()).expect("a JSON body");
        (response, json)
    };

    for route in declared.iter().filter(|route| !route.public) {
        for path in concrete(&route.path) {
            let target = format!("{path}?limit=%");
            let (response, body) = answer(&route.method, &target, "{not json");
            let name = format!("{} {target}", route.method);
            assert_eq!(*response.status(), 401, "{name}: {body}");
            assert_eq!(body["error"]["code"], "missing_token", "{name}");
            assert!(body["error"]["message"].is_string(), "{name}: {body}");
            assert_eq!(
                header(&response, "www-authenticate").as_deref(),
                Some("Bearer"),
                "{name}"
            );
        }
    }

    let mut paths: Vec<&str> = Vec::new();
    for route in &declared {
        if !paths.contains(&route.path.as_str()) {
            paths.push(&route.path);
        }
    }
    for pattern in paths {
        let allowed: Vec<String> = declared
            .iter()
            .filter(|route| route.path == pattern)
            .map(|route| route.method.to_string())
            .collect();
        for method in METHODS
            .iter()
            .filter(|method| !allowed.contains(&method.to_string()))
        {
            for path in concrete(pattern) {
                let (response, body) = answer(method, &path, "");
                let name = format!("{method} {path}");
                assert_eq!(*response.status(), 405, "{name}: {body}");
                assert_eq!(body["error"]["code"], "method_not_allowed", "{name}");
                let allow = header(&response, "allow").unwrap_or_default();
                let mut listed: Vec<&str> = allow.split(", ").collect();
                let mut expected: Vec<&str> = allowed.iter().map(String::as_str).collect();
                listed.sort_unstable();
                expected.sort_unstable();
                assert_eq!(listed, expected, "{name}: Allow {allow:?}");
            }
        }
    }

    for path in unknown_paths(&declared, &base) {
        for method in &METHODS {
            let (response, body) = answer(method, &path, "");
            let name = format!("{method} {path}");
            assert_eq!(*response.status(), 404, "{name}: {body}");
            assert_eq!(body["error"]["code"], "not_found", "{name}");
        }
    }
}

/// `pattern` as requests name it: each `:name` filled with each sample, with and without a
/// trailing slash.
fn concrete(pattern: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for sample in SAMPLES {
        let path: Vec<&str> = pattern
            .split('/')
            .map(|segment| {
                if segment.starts_with(':') {
                    sample
                } else {
                    segment
                }
            })
            .collect();
        let path = path.join("/");
        for path in [path.clone(), format!("{}/", path.trim_end_matches('/'))] {
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    paths
}

/// Paths under `base` that no declared route matches: a sibling of the routes, and each
/// child and each parent (down to `base`) of a declared path, in both slash forms.
fn unknown_paths(declared: &[Route], base: &str) -> Vec<String> {
    let base_depth = base.trim_matches('/').split('/').count();
    let mut candidates = vec![format!("{base}/no-such-route")];
    for route in declared {
        for path in concrete(&route.path) {
            let path = path.trim_end_matches('/');
            candidates.push(format!("{path}/no-such-route"));
            let segments: Vec<&str> = path.split('/').collect();
            // `segments[0]` is the empty string before the leading slash.
            for depth in base_depth..segments.len() - 1 {
                candidates.push(segments[..=depth].join("/"));
            }
        }
    }
    let mut unknown = Vec::new();
    for candidate in candidates {
        let known = declared
            .iter()
            .any(|route| matches(&route.path, &candidate));
        for path in [candidate.clone(), format!("{candidate}/")] {
            if !known && !unknown.contains(&path) {
                unknown.push(path);
            }
        }
    }
    unknown
}

#[cfg(test)]
mod tests {
    use spin_sdk::http::{Params, Request, Response};

    use super::*;

    /// A handler the way components write them: the caller first, then the query and body.
    fn guarded(request: Request, _: Params) -> Result<Response, crate::ApiError> {
        crate::auth::caller(&request)?;
        let _ = crate::query::Query::parse(request.query())?;
        let _: Value = crate::http::read_json(&request)?;
        Ok(crate::http::json_response(200, &"ok"))
    }

    /// Reads the body before asking who calls.
    fn careless(request: Request, params: Params) -> Result<Response, crate::ApiError> {
        let _: Value = crate::http::read_json(&request)?;
        guarded(request, params)
    }

    fn public(_: Request, _: Params) -> Response {
        crate::http::json_response(200, &"ok")
    }

    fn things() -> Routes {
        Routes::service("/api/things", "thing-service")
            .post("/api/things", guarded)
            .get("/api/things", guarded)
            .post("/api/things/join", public)
            .public()
            .get("/api/things/:id", guarded)
            .delete_async("/api/things/:id", |request, params| async move {
                guarded(request, params)
            })
    }

    #[test]
    fn a_table_of_guarded_routes_passes() {
        assert_routes(things());
    }

    #[test]
    #[should_panic(expected = "/parts?limit=%")]
    fn a_route_that_reads_the_body_first_fails() {
        assert_routes(things().post("/api/things/:id/parts", careless));
    }

    #[test]
    fn patterns_match_as_spin_sdk_routes_them() {
        assert!(matches("/api/things/:id", "/api/things/7/"));
        assert!(matches("/docs/", "/docs"));
        assert!(!matches("/api/things/:id", "/api/things/7/parts"));
        assert!(!matches("/api/things/:id", "/api/things"));
        let unknown = unknown_paths(things().declared(), "/api/things");
        let unknown = |path: &str| unknown.iter().any(|unknown| unknown == path);
        // A sibling under the base is `GET /api/things/:id`'s, so it is not unknown.
        assert!(!unknown("/api/things/no-such-route"));
        assert!(unknown("/api/things/not-a-uuid/no-such-route/"));
        assert!(unknown("/api/things/health/live/no-such-route"));
        assert!(!unknown("/api"));
    }
}
