//! docs-service: the whole API's OpenAPI 3.1 document at `GET /openapi.json` and Swagger UI
//! at `GET /docs`, as a Spin component (so it is served the same under `spin up`, SpinKube or
//! `detailing up`).
//!
//! The document is `openapi.json` beside this crate's manifest, generated from the other
//! components' Rust types by `tests/openapi.rs` (which fails when the file is stale); Swagger
//! UI's files come from the npm package `swagger-ui-dist`, fetched by `build.rs`.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

use api::routes::Routes;
use spin_sdk::http::{Params, Request, Response, Router};

/// The document every other component's `openapi()` contributes to.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// The version of `swagger-ui-dist` embedded (ui/package.json).
pub const SWAGGER_UI_VERSION: &str = env!("SWAGGER_UI_VERSION");

/// Scripts and styles only from this origin; Swagger UI sets inline styles and shows
/// inline (data:) images.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; \
     frame-ancestors 'none'";

/// `(path, content type, bytes)` of every file under `/docs`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "/docs",
        "text/html; charset=utf-8",
        include_bytes!("index.html"),
    ),
    (
        "/docs/",
        "text/html; charset=utf-8",
        include_bytes!("index.html"),
    ),
    (
        "/docs/init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("init.js"),
    ),
    (
        "/docs/swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!(concat!(env!("SWAGGER_UI_DIST"), "/swagger-ui.css")),
    ),
    (
        "/docs/swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("SWAGGER_UI_DIST"), "/swagger-ui-bundle.js")),
    ),
    (
        "/docs/favicon-32x32.png",
        "image/png",
        include_bytes!(concat!(env!("SWAGGER_UI_DIST"), "/favicon-32x32.png")),
    ),
];

api::export_router!(router);

/// The component's routes (full paths: spin.toml routes `/openapi.json` and `/docs/...` here),
/// all public.
pub fn routes() -> Routes {
    let mut routes = Routes::new("/docs")
        .get("/openapi.json", |_: Request, _: Params| {
            file("application/json", OPENAPI_JSON.as_bytes())
        })
        .public();
    for &(path, content_type, bytes) in FILES {
        routes = routes
            .get(path, move |_: Request, _: Params| file(content_type, bytes))
            .public();
    }
    routes
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's own part of the document: the two routes above.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::path::OperationBuilder;
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{
        ContentBuilder, HttpMethod, ObjectBuilder, OpenApiBuilder, PathItem, PathsBuilder,
        ResponseBuilder,
    };
    let page = |summary: &str, id: &str, content_type: &str| {
        let ok = ResponseBuilder::new().description(summary).content(
            content_type,
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new()))
                .build(),
        );
        PathItem::new(
            HttpMethod::Get,
            OperationBuilder::new()
                .tag("docs")
                .summary(Some(summary))
                .operation_id(Some(id))
                .security(SecurityRequirement::default())
                .response("200", ok.build())
                .build(),
        )
    };
    OpenApiBuilder::new()
        .paths(
            PathsBuilder::new()
                .path(
                    "/openapi.json",
                    page(
                        "This document (OpenAPI 3.1)",
                        "openapi_document",
                        "application/json",
                    ),
                )
                .path(
                    "/docs",
                    page("Swagger UI on this document", "swagger_ui", "text/html"),
                ),
        )
        .build()
}

fn file(content_type: &str, bytes: &'static [u8]) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("cache-control", "no-cache")
        .header("x-content-type-options", "nosniff")
        .header("content-security-policy", CONTENT_SECURITY_POLICY)
        .body(bytes.to_vec())
        .build()
}

#[cfg(test)]
mod tests {
    use spin_sdk::http::Method;

    use super::*;

    fn get(path: &str) -> Response {
        api::testing::send(&router(), api::testing::request(Method::Get, path, ""))
    }

    #[test]
    fn every_file_is_served_with_its_type() {
        for &(path, content_type, bytes) in FILES {
            let response = get(path);
            assert_eq!(*response.status(), 200, "{path}");
            assert_eq!(
                api::testing::header(&response, "content-type").as_deref(),
                Some(content_type)
            );
            assert_eq!(response.body(), bytes);
            assert!(!bytes.is_empty(), "{path} is empty");
        }
        let index = String::from_utf8(get("/docs").body().to_vec()).unwrap();
        assert!(index.contains("/docs/swagger-ui-bundle.js"));
        assert!(!index.contains("http"), "no asset from elsewhere: {index}");
    }

    #[test]
    fn the_document_is_served() {
        let response = get("/openapi.json");
        let doc: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn routes_answer_405_and_404_in_json() {
        api::testing::assert_routes(routes());
    }
}
