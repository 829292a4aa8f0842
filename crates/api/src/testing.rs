//! Native tests of a component's router. Requests that are answered before any Spin import is
//! touched (routing, 401 before the secret is read, 405, body validation) run without a host;
//! a handler that reaches for the host instead fails the test loudly.

use std::future::Future;
use std::task::{Context, Poll, Waker};

use serde_json::Value;
use spin_sdk::http::{Method, Request, Response, Router};

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
