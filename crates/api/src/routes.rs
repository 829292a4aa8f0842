//! A component's route table: each route is declared once, as method, path pattern and
//! handler, and everything else about routing follows from that list. [`Routes::into_router`]
//! builds spin-sdk's `Router` with, for every declared path, a 405 in the JSON error shape
//! whose `Allow` names exactly the methods declared on that path, and a JSON 404 for any
//! other path (spin-sdk's own answers to both are plain text). The list itself
//! ([`Routes::declared`]) is what `api::testing::assert_routes` walks.
//!
//! ```ignore
//! pub fn routes() -> Routes {
//!     Routes::service("/api/cars", SERVICE)
//!         .post("/api/cars", create_car)
//!         .get("/api/cars", list_cars)
//!         .get("/api/cars/:car_id", get_car)
//! }
//! ```
//!
//! Patterns are spin-sdk's: `:name` matches one segment, and an exact segment wins over
//! `:name` for the same method. The 405s are registered per method, so a path declared for
//! one method answers 405 to the others even where another route's pattern would match it
//! (`GET /api/orders/review`, declared for POST only, is not `GET /api/orders/:order_id`), as
//! the API document says. HEAD and OPTIONS are served only where declared; elsewhere they
//! answer 405 like any other undeclared method (spin-sdk's fallback of HEAD to GET never
//! applies, since the 405 route matches first).

use std::future::Future;

use spin_sdk::http::{IntoResponse, Method, Params, Request, Response, Router};

use crate::error::ApiError;
use crate::http::{health, live, not_found};

/// The methods a route table answers for, in the order an `Allow` header lists them.
pub const METHODS: [Method; 7] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Options,
];

/// One declared route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// The pattern, e.g. `/api/cars/:car_id`.
    pub path: String,
    /// Answers without a bearer token: health probes, register and login, the relay's
    /// events (which check a token of their own). Every other route answers 401 first.
    pub public: bool,
}

/// The routes of one component, in the order declared, and the router being built from them.
pub struct Routes {
    base: String,
    declared: Vec<Route>,
    router: Router,
}

macro_rules! declare {
    ($($method:ident => $sync:ident, $async_name:ident;)*) => {$(
        #[doc = concat!("Declares `", stringify!($method), " path`, answered by `handler`.")]
        pub fn $sync<Resp: IntoResponse + 'static>(
            self,
            path: &str,
            handler: impl Fn(Request, Params) -> Resp + 'static,
        ) -> Self {
            self.declare(Method::$method, path, |router, path| {
                router.add(path, Method::$method, handler)
            })
        }

        #[doc = concat!(
            "Declares `", stringify!($method), " path`, answered by the async `handler`."
        )]
        pub fn $async_name<Fut, Resp>(
            self,
            path: &str,
            handler: impl Fn(Request, Params) -> Fut + 'static,
        ) -> Self
        where
            Fut: Future<Output = Resp> + 'static,
            Resp: IntoResponse + 'static,
        {
            self.declare(Method::$method, path, |router, path| {
                router.add_async(path, Method::$method, handler)
            })
        }
    )*};
}

impl Routes {
    /// No routes yet. `base` is the path the component is routed at (`/api/cars`): where
    /// `api::testing::assert_routes` looks for unknown paths.
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            declared: Vec::new(),
            router: Router::new(),
        }
    }

    /// A service routed at `base`, with its public probes: `GET <base>/health` (readiness:
    /// the database answers) and `GET <base>/health/live` (liveness: no dependency touched).
    pub fn service(base: &str, service: &'static str) -> Self {
        Self::new(base)
            .get(&format!("{base}/health"), health(service))
            .public()
            .get(&format!("{base}/health/live"), live(service))
            .public()
    }

    declare! {
        Get => get, get_async;
        Post => post, post_async;
        Put => put, put_async;
        Patch => patch, patch_async;
        Delete => delete, delete_async;
    }

    /// Marks the route declared last as public (see [`Route::public`]).
    pub fn public(mut self) -> Self {
        let route = self
            .declared
            .last_mut()
            .expect("public() follows the route it marks");
        route.public = true;
        self
    }

    /// Every route, in the order declared.
    pub fn declared(&self) -> &[Route] {
        &self.declared
    }

    /// The path the component is routed at.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The methods declared on `path` (a pattern, as declared), as an `Allow` header lists
    /// them: `GET, POST`.
    pub fn allow(&self, path: &str) -> String {
        let declared = |method: &Method| {
            self.declared
                .iter()
                .any(|route| route.path == path && route.method == *method)
        };
        let methods: Vec<String> = METHODS
            .iter()
            .filter(|method| declared(method))
            .map(Method::to_string)
            .collect();
        methods.join(", ")
    }

    /// The router: the declared routes, a 405 with `Allow` on each declared path for any
    /// other method, and 404 `not_found` for every other path.
    ///
    /// Every fresh instance builds it, so it registers as few routes as it can. spin-sdk tries
    /// every route of the request's method before any `any` route: where a route of method M
    /// also matches a declared path that lacks M, that path gets a 405 route for M of its own
    /// (`GET /api/orders/review`, declared for POST only, would otherwise be `GET
    /// /api/orders/:order_id`; for one method an exact segment beats `:name`, so the declared
    /// path's 405 wins). Such a 405 route can in turn shadow another path, hence the loop.
    /// Every other miss reaches one `any` route, which answers 405 for the declared path
    /// that matches best, or 404.
    pub fn into_router(self) -> Router {
        let mut paths: Vec<&str> = Vec::new();
        for route in &self.declared {
            if !paths.contains(&route.path.as_str()) {
                paths.push(&route.path);
            }
        }
        let fallback = Fallback {
            allows: paths
                .iter()
                .map(|path| (path.to_string(), self.allow(path)))
                .collect(),
        };
        let mut refusals: Vec<(String, Method, String)> = Vec::new();
        for method in METHODS {
            let mut routed: Vec<&str> = self
                .declared
                .iter()
                .filter(|route| route.method == method)
                .map(|route| route.path.as_str())
                .collect();
            loop {
                let shadowed = paths.iter().copied().find(|path| {
                    !routed.contains(path)
                        && routed.iter().any(|taken| patterns_overlap(taken, path))
                });
                let Some(path) = shadowed else { break };
                routed.push(path);
                refusals.push((path.to_owned(), method.clone(), self.allow(path)));
            }
        }
        let mut router = self.router;
        for (path, method, allow) in refusals {
            router.add(&path, method, method_not_allowed(allow));
        }
        router.any("/*", move |request: Request, params: Params| match fallback
            .allow_for(request.path())
        {
            Some(allow) => method_not_allowed(allow.to_owned())(request, params),
            None => not_found(request, params),
        });
        router
    }

    fn declare(
        mut self,
        method: Method,
        path: &str,
        register: impl FnOnce(&mut Router, &str),
    ) -> Self {
        assert!(
            !self
                .declared
                .iter()
                .any(|route| route.path == path && route.method == method),
            "{method} {path} is declared twice"
        );
        register(&mut self.router, path);
        self.declared.push(Route {
            method,
            path: path.to_owned(),
            public: false,
        });
        self
    }
}

/// The declared paths with their `Allow` values, for requests no route took.
struct Fallback {
    allows: Vec<(String, String)>,
}

impl Fallback {
    /// The `Allow` of the declared pattern that matches `path` with the most exact segments.
    fn allow_for(&self, path: &str) -> Option<&str> {
        self.allows
            .iter()
            .filter(|(pattern, _)| matches(pattern, path))
            .max_by_key(|(pattern, _)| pattern.split('/').filter(|p| !p.starts_with(':')).count())
            .map(|(_, allow)| allow.as_str())
    }
}

/// Whether spin-sdk's router matches `path` against `pattern`: segment by segment, `:name`
/// matching any one, slashes at either end ignored.
pub(crate) fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_matches('/').split('/').collect();
    pattern.len() == path.len()
        && pattern.iter().zip(&path).all(|(expected, segment)| {
            if expected.starts_with(':') {
                !segment.is_empty()
            } else {
                expected == segment
            }
        })
}

/// The component's export, `wasi:http/incoming-handler`, serving every request with the
/// router `build` makes ([`instance_router`]): `api::export_router!(router);` at a
/// component's crate root. Only the wasm build exports it: a native cdylib cannot carry the
/// WIT export's symbol name (`wasi:http/incoming-handler@0.2.0#handle`), and native builds
/// exist for tests. spin-sdk's export glue is `unsafe` by nature, so a component's crate root
/// allows `unsafe_code` on wasm32 only.
#[macro_export]
macro_rules! export_router {
    ($build:path) => {
        #[cfg(target_arch = "wasm32")]
        #[spin_sdk::http_component]
        async fn handle(request: spin_sdk::http::Request) -> spin_sdk::http::Response {
            $crate::routes::instance_router($build)
                .handle_async(request)
                .await
        }
    };
}

/// The router `build` makes, built once per instance: on a host that reuses instances, the
/// requests after an instance's first skip building it. Each instance has its own memory, so
/// what is kept here never outlives the instance.
pub fn instance_router(build: fn() -> Router) -> &'static Router {
    thread_local! {
        static BUILT: std::cell::RefCell<Vec<(usize, &'static Router)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let key = build as usize;
    BUILT.with_borrow_mut(|built| {
        if let Some((_, router)) = built.iter().find(|(k, _)| *k == key) {
            return *router;
        }
        let router: &'static Router = Box::leak(Box::new(build()));
        built.push((key, router));
        router
    })
}

/// Whether some path matches both patterns: as many segments, each pair equal or one of them
/// a `:name` (our patterns have no wildcards).
fn patterns_overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || x.starts_with(':') || y.starts_with(':'))
}

/// A known path hit with a method it does not serve: 405 with `allow` (e.g. `GET, POST`) in
/// the `Allow` header, as RFC 9110 asks.
fn method_not_allowed(allow: String) -> impl Fn(Request, Params) -> Response {
    move |request, _params| {
        let method = request.method().to_string();
        let mut response = ApiError::method_not_allowed(&method, request.path()).into_response();
        response.set_header("allow", allow.clone());
        response
    }
}

#[cfg(test)]
mod tests {
    use spin_sdk::http::{Method, Params, Request};

    use super::*;
    use crate::testing::call;

    fn ok(_: Request, _: Params) -> Response {
        crate::http::json_response(200, &serde_json::json!({"ok": true}))
    }

    #[test]
    fn liveness_answers_without_the_host_and_other_methods_are_405() {
        let router = Routes::service("/api/things", "thing-service").into_router();
        let (status, _, body) = call(&router, Method::Get, "/api/things/health/live", "");
        assert_eq!(status, 200);
        assert_eq!(
            body,
            serde_json::json!({"status": "ok", "service": "thing-service"})
        );
        for path in ["/api/things/health", "/api/things/health/live"] {
            let (status, allow, body) = call(&router, Method::Post, path, "");
            assert_eq!(status, 405, "{path}");
            assert_eq!(allow.as_deref(), Some("GET"));
            assert_eq!(body["error"]["code"], "method_not_allowed");
        }
    }

    #[test]
    fn a_literal_path_declared_for_one_method_is_405_for_another_that_a_pattern_would_match() {
        let router = Routes::new("/api/things")
            .get("/api/things/:id", ok)
            .post("/api/things/review", ok)
            .into_router();
        let (status, allow, _) = call(&router, Method::Get, "/api/things/review", "");
        assert_eq!(status, 405);
        assert_eq!(allow.as_deref(), Some("POST"));
        let (status, _, _) = call(&router, Method::Post, "/api/things/review", "");
        assert_eq!(status, 200);
        let (status, _, _) = call(&router, Method::Get, "/api/things/other", "");
        assert_eq!(status, 200);
        let (status, allow, _) = call(&router, Method::Post, "/api/things/other", "");
        assert_eq!(status, 405);
        assert_eq!(allow.as_deref(), Some("GET"));
    }

    #[test]
    fn allow_lists_the_declared_methods_in_a_fixed_order() {
        let routes = Routes::new("/api/things")
            .post("/api/things", ok)
            .get("/api/things", ok)
            .delete("/api/things/:id", ok)
            .patch("/api/things/:id", ok)
            .get("/api/things/:id", ok);
        assert_eq!(routes.allow("/api/things"), "GET, POST");
        assert_eq!(routes.allow("/api/things/:id"), "GET, PATCH, DELETE");
        let declared: Vec<String> = routes
            .declared()
            .iter()
            .map(|route| format!("{} {}", route.method, route.path))
            .collect();
        assert_eq!(declared[0], "POST /api/things");
        let router = routes.into_router();
        let (status, allow, _) = call(&router, Method::Put, "/api/things/7", "");
        assert_eq!(
            (status, allow.as_deref()),
            (405, Some("GET, PATCH, DELETE"))
        );
        let (status, _, body) = call(&router, Method::Get, "/api/things/7/more", "");
        assert_eq!((status, &body["error"]["code"]), (404, &"not_found".into()));
    }

    #[test]
    #[should_panic(expected = "GET /api/things is declared twice")]
    fn a_route_declared_twice_is_refused() {
        let _ = Routes::new("/api/things")
            .get("/api/things", ok)
            .get("/api/things", ok);
    }
}
