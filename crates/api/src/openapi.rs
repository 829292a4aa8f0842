//! The parts of the OpenAPI document every component shares: the error body, the probes, the
//! page parameters, and [`document`], which joins the components' parts into the one document
//! served at `GET /openapi.json`.
//!
//! A component describes its own operations with `#[utoipa::path]` on its handlers and its
//! bodies with `#[derive(ToSchema)]` on the types it serializes. What is the same everywhere is
//! added here, once: the bearer scheme (required unless an operation says `security(())`), 401
//! on every operation that needs a token, 400/413/422 on every operation that reads a body,
//! 400 where a query string is read, 503 wherever the database is.

use serde_json::Value;
use utoipa::openapi::path::{Operation, OperationBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, PathItem,
    PathsBuilder, Ref, RefOr, Response, ResponseBuilder,
};
use utoipa::{IntoParams, ToSchema};

use crate::json::Object;

/// The security scheme's name in `components.securitySchemes`.
pub const BEARER: &str = "bearer";

/// Every error answer: `{"error":{"code":...,"message":...}}` (see [`crate::ApiError`]).
#[derive(ToSchema)]
#[schema(as = Error, example = json!({"error": {"code": "car_not_found", "message": "no car with id 0b5d0b55-3ad4-4bd2-8b8b-2f9b3a1d7f11"}}))]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Stable, machine-readable: clients branch on it.
    #[schema(example = "car_not_found")]
    code: String,
    /// For people; may change between versions.
    message: String,
    /// Only on `validation_failed` (422): every invalid field, not just the first.
    fields: Option<Vec<FieldErrorBody>>,
}

#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorBody {
    #[schema(example = "vin")]
    field: String,
    #[schema(example = "must be 17 letters or digits, without I, O or Q")]
    message: String,
}

/// What both probes answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Health {
    #[schema(example = "ok")]
    status: String,
    #[schema(example = "car-service")]
    service: String,
}

/// `?limit=&cursor=` of every list (see [`crate::query::Page`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page; absent or empty for the first page.
    #[param(
        pattern = r"^(?:-?[0-9]{1,16}~[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    cursor: Option<String>,
}

/// A response in the shared error shape.
pub fn error_response(description: &str) -> RefOr<Response> {
    json_response(description, "Error")
}

fn json_response(description: &str, schema: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
        .into()
}

/// `GET <base>/health` and `GET <base>/health/live` (declared by
/// [`crate::routes::Routes::service`]), under `tag`.
pub fn health_paths(base: &str, tag: &str) -> OpenApi {
    let probe = |summary: &str, operation_id: String, with_503: bool| {
        let mut operation = OperationBuilder::new()
            .tag(tag)
            .summary(Some(summary))
            .operation_id(Some(operation_id))
            .security(SecurityRequirement::default())
            .response("200", json_response("Healthy", "Health"));
        if with_503 {
            operation = operation.response(
                "503",
                error_response("database_unavailable: PostgreSQL does not answer"),
            );
        }
        PathItem::new(HttpMethod::Get, operation.build())
    };
    let name = tag.replace(' ', "_");
    OpenApiBuilder::new()
        .paths(
            PathsBuilder::new()
                .path(
                    format!("{base}/health"),
                    probe(
                        "Readiness: the component and its database answer",
                        format!("{name}_health"),
                        true,
                    ),
                )
                .path(
                    format!("{base}/health/live"),
                    probe(
                        "Liveness: the component answers (no dependency is touched)",
                        format!("{name}_live"),
                        false,
                    ),
                ),
        )
        .build()
}

/// The whole API's document: `parts` (one per component) joined, with the info, the bearer
/// scheme, the shared schemas and the errors every operation of a kind can answer.
pub fn document(parts: impl IntoIterator<Item = OpenApi>) -> OpenApi {
    let mut doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Car detailing platform")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Users, cars, orders, cart, payments, bonuses, fines and support: eight Spin \
                     components behind one listener. Errors always have the shape \
                     `{\"error\":{\"code\",\"message\"}}` (plus `fields` on 422). Lists are \
                     paged with `limit` and an opaque `cursor`.",
                ))
                .build(),
        )
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    BEARER,
                    SecurityScheme::Http(
                        HttpBuilder::new()
                            .scheme(HttpAuthScheme::Bearer)
                            .bearer_format("JWT")
                            .description(Some(
                                "An access token from POST /api/users/login (HS256, expires)",
                            ))
                            .build(),
                    ),
                )
                .schema_from::<ErrorBody>()
                .schema_from::<ErrorDetail>()
                .schema_from::<FieldErrorBody>()
                .schema_from::<Health>()
                .build(),
        ))
        .security(Some([SecurityRequirement::new(
            BEARER,
            Vec::<String>::new(),
        )]))
        .build();
    for part in parts {
        doc.merge(part);
    }
    let mut tags: Vec<String> = Vec::new();
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            add_shared_responses(operation);
            for tag in operation.tags.iter().flatten() {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
        }
    }
    doc.tags = Some(
        tags.into_iter()
            .map(|t| TagBuilder::new().name(t).build())
            .collect(),
    );
    doc
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

/// The errors that do not depend on the operation: 401 where a token is needed (the document's
/// default unless the operation says `security(())`), 400/413/422 where a body is read.
fn add_shared_responses(operation: &mut Operation) {
    let public = operation
        .security
        .as_ref()
        .is_some_and(|requirements| requirements.iter().all(is_empty_requirement));
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description));
    };
    if !public {
        add(
            "401",
            "missing_token, invalid_token or token_expired: no valid bearer token \
             (with `WWW-Authenticate: Bearer`)",
        );
    }
    let reads_body = operation.request_body.as_ref().is_some_and(is_json_body);
    if reads_body {
        add("400", "malformed_json: the body is not a JSON object");
        add("413", "payload_too_large: the body is over the limit");
        add(
            "422",
            "validation_failed: `fields` lists every invalid field",
        );
    }
    let reads_query =
        operation.parameters.iter().flatten().any(
            |parameter| matches!(parameter, RefOr::T(p) if p.parameter_in == ParameterIn::Query),
        );
    if reads_query {
        add(
            "400",
            "malformed_query: the query string is not valid percent-encoded UTF-8",
        );
    }
    // Whatever needs a token or reads a body works on the database.
    if !public || reads_body {
        add(
            "503",
            "database_unavailable: PostgreSQL does not answer; retry later",
        );
    }
}

fn is_empty_requirement(requirement: &SecurityRequirement) -> bool {
    requirement == &SecurityRequirement::default()
}

fn is_json_body(body: &RefOr<RequestBody>) -> bool {
    match body {
        RefOr::T(body) => body.content.contains_key("application/json"),
        RefOr::Ref(_) => true,
    }
}

/// The example of `T`'s schema as a JSON object: a request body the component must accept.
pub fn example_of<T: ToSchema>() -> Object {
    let schema = serde_json::to_value(T::schema()).expect("a schema serializes");
    let example = schema
        .get("examples")
        .and_then(|examples| examples.get(0))
        .or_else(|| schema.get("example"))
        .cloned();
    match example {
        Some(Value::Object(object)) => object,
        other => panic!("{} has no object example: {other:?}", T::name()),
    }
}

/// The `required` properties of `T`'s schema.
pub fn required_of<T: ToSchema>() -> Vec<String> {
    let schema = serde_json::to_value(T::schema()).expect("a schema serializes");
    schema["required"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|name| name.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
