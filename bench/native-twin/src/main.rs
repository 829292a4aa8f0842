//! The benchmark's native contender: what car-service's and order-service's hot endpoints
//! look like written without wasm, as a Rust engineer would — axum on tokio, a deadpool of
//! tokio-postgres connections with cached prepared statements, and a keep-alive HTTP client
//! for the order → car call. Same tables, same JSON bodies, same statuses as the components.
//!
//! ```text
//! bench-native-twin --listen 127.0.0.1:0 --database-url URL --jwt-secret SECRET \
//!     [--car-service-url URL] [--pool-size 16]
//! ```
//!
//! Prints `listening on http://ADDR` once bound; logs nothing per request.

mod error;
mod rules;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use auth::Secret;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::serve::ListenerExt;
use axum::Router;
use chrono::{DateTime, Utc};
use clap::Parser;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use crate::error::ApiError;
use crate::rules::{NewCar, NewOrder};

/// car-service and order-service's hot endpoints as one native axum server.
#[derive(Debug, Parser)]
#[command(name = "bench-native-twin", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// PostgreSQL URL of the migrated `detailing` database.
    #[arg(long, env = "POSTGRES_URL", hide_env_values = true)]
    database_url: String,
    /// The HS256 key tokens are signed with (at least 32 bytes), as `jwt_secret`.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
    /// Where POST /api/orders looks the car up (`GET {url}/api/cars/{id}`); default: this
    /// server's own listen address, over loopback.
    #[arg(long, env = "CAR_SERVICE_URL")]
    car_service_url: Option<String>,
    /// PostgreSQL connections in the pool.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pool_size: u16,
}

/// The largest request body, as `detailing up --max-body-bytes` defaults to.
const MAX_BODY_BYTES: usize = 4 << 20;
/// How long the order → car call may take, as the host's request deadline.
const CAR_SERVICE_TIMEOUT: Duration = Duration::from_secs(30);

struct App {
    pool: Pool,
    secret: Secret,
    http: reqwest::Client,
    /// Without a trailing slash.
    car_service_url: String,
}

type Shared = State<Arc<App>>;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-native-twin: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let secret = Secret::new(args.jwt_secret.as_bytes()).map_err(|weak| format!("{weak}"))?;
    let pg: tokio_postgres::Config = args
        .database_url
        .parse()
        .map_err(|error| format!("the database URL is not usable: {error}"))?;
    let manager = Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(usize::from(args.pool_size))
        .build()
        .map_err(|error| format!("cannot build the connection pool: {error}"))?;
    // Fail now, not on the first request, when PostgreSQL is not there.
    drop(
        pool.get()
            .await
            .map_err(|error| format!("cannot connect to PostgreSQL: {error}"))?,
    );

    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|error| format!("no local address: {error}"))?;
    let car_service_url = match args.car_service_url {
        Some(url) if url.starts_with("http://") => url.trim_end_matches('/').to_owned(),
        Some(url) => {
            return Err(format!(
                "--car-service-url must be an http:// URL (this build has no TLS), not {url}"
            ))
        }
        None => format!("http://{}", loopback(local)),
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(CAR_SERVICE_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|error| format!("cannot build the HTTP client: {error}"))?;

    let app = Arc::new(App {
        pool,
        secret,
        http,
        car_service_url,
    });
    let router = Router::new()
        .route(
            "/api/cars/health/live",
            get(live).fallback(method_not_allowed("GET")),
        )
        .route(
            "/api/cars/health",
            get(health).fallback(method_not_allowed("GET")),
        )
        .route(
            "/api/cars",
            post(create_car).fallback(method_not_allowed("POST")),
        )
        .route(
            "/api/cars/{car_id}",
            get(get_car).fallback(method_not_allowed("GET")),
        )
        .route(
            "/api/orders",
            post(create_order).fallback(method_not_allowed("POST")),
        )
        .fallback(unrouted)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app);

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{local}")
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("cannot write to stdout: {error}"))?;
    drop(stdout);

    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|error| format!("the server failed: {error}"))
}

/// Where to reach our own listener: a wildcard bind is reached on loopback.
fn loopback(local: SocketAddr) -> SocketAddr {
    match local {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], v4.port()))
        }
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port()))
        }
        other => other,
    }
}

/// Ctrl-C or SIGTERM: stop accepting, let in-flight requests finish.
async fn shutdown() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

// ---- responses ----------------------------------------------------------------------

/// A JSON response from bytes already encoded.
pub(crate) fn json_bytes(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_bytes(status, body),
        Err(error) => ApiError::internal("the response could not be encoded")
            .with_detail(error)
            .into_response(),
    }
}

/// 201 with the resource and where it lives.
fn created<T: Serialize>(value: &T, location: String) -> Response {
    let mut response = json(StatusCode::CREATED, value);
    if let Ok(location) = HeaderValue::try_from(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// 405 in our error shape, with `Allow`.
fn method_not_allowed(allow: &'static str) -> MethodRouter<Arc<App>> {
    MethodRouter::new().fallback(move |method: Method, uri: Uri| async move {
        let mut response = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {}", uri.path()),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        response
    })
}

/// A path under the components' prefixes answers as they do (JSON 404 `not_found`);
/// anything else as the host does (404, empty body).
async fn unrouted(uri: Uri) -> Response {
    let path = uri.path();
    let ours = ["/api/cars", "/api/orders"]
        .iter()
        .any(|prefix| path == *prefix || path.starts_with(&format!("{prefix}/")));
    if ours {
        ApiError::route_not_found(path).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

// ---- health -------------------------------------------------------------------------

/// What car-service's `json!({"status": "ok", "service": ...})` writes: serde_json without
/// `preserve_order` (as this workspace builds it) sorts object keys.
const HEALTH: &[u8] = br#"{"service":"car-service","status":"ok"}"#;

/// `GET /api/cars/health/live`: the trivial route, no database.
async fn live() -> Response {
    json_bytes(StatusCode::OK, Bytes::from_static(HEALTH))
}

/// `GET /api/cars/health`: after a database round trip, as car-service's.
async fn health(State(app): Shared) -> Result<Response, ApiError> {
    let db = app.pool.get().await.map_err(ApiError::from_pool)?;
    let ping = db
        .prepare_cached("SELECT 1")
        .await
        .map_err(ApiError::from_db)?;
    db.query_one(&ping, &[]).await.map_err(ApiError::from_db)?;
    Ok(json_bytes(StatusCode::OK, Bytes::from_static(HEALTH)))
}

// ---- cars ---------------------------------------------------------------------------

/// A car as car-service answers it, fields in its order.
#[derive(Debug, Serialize)]
struct Car {
    id: Uuid,
    owner_id: Uuid,
    license_plate: String,
    vin: String,
    make: String,
    model: String,
    year: i32,
    created_at: DateTime<Utc>,
}

/// The columns of a car, in [`Car`]'s order.
macro_rules! car_columns {
    () => {
        "id, owner_id, license_plate, vin, make, model, year, created_at"
    };
}

const FIND_CAR: &str = concat!("SELECT ", car_columns!(), " FROM cars.cars WHERE id = $1");

/// The unique VIN decides, not a read before the write.
const INSERT_CAR: &str = concat!(
    "INSERT INTO cars.cars (owner_id, license_plate, vin, make, model, year) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (vin) DO NOTHING RETURNING ",
    car_columns!()
);

fn car_from_row(row: &Row) -> Result<Car, ApiError> {
    let read = || -> Result<Car, tokio_postgres::Error> {
        Ok(Car {
            id: row.try_get(0)?,
            owner_id: row.try_get(1)?,
            license_plate: row.try_get(2)?,
            vin: row.try_get(3)?,
            make: row.try_get(4)?,
            model: row.try_get(5)?,
            year: row.try_get(6)?,
            created_at: row.try_get(7)?,
        })
    };
    read().map_err(|error| {
        ApiError::internal("a database query returned an unexpected result").with_detail(error)
    })
}

/// `GET /api/cars/{car_id}`: the owner's or staff's; anyone else's, a missing one and a
/// non-UUID id all answer 404 `car_not_found`.
async fn get_car(State(app): Shared, headers: HeaderMap, uri: Uri) -> Result<Response, ApiError> {
    let caller = rules::caller(&headers, &app.secret)?;
    let raw = uri.path().rsplit('/').next().unwrap_or_default();
    let id = Uuid::parse_str(raw).map_err(|_| ApiError::car_not_found(raw))?;
    let row = {
        let db = app.pool.get().await.map_err(ApiError::from_pool)?;
        let find = db
            .prepare_cached(FIND_CAR)
            .await
            .map_err(ApiError::from_db)?;
        db.query_opt(&find, &[&id])
            .await
            .map_err(ApiError::from_db)?
    };
    match row.as_ref().map(car_from_row).transpose()? {
        Some(car) if caller.may_access(car.owner_id) => Ok(json(StatusCode::OK, &car)),
        _ => Err(ApiError::car_not_found(id)),
    }
}

/// `POST /api/cars` `{owner_id?, license_plate, vin, make, model, year}`.
async fn create_car(
    State(app): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = rules::caller(&headers, &app.secret)?;
    let car = NewCar::parse(&rules::json_object(&body)?).map_err(ApiError::invalid)?;
    let owner = match car.owner_id {
        None => caller.user_id,
        Some(owner) if caller.may_access(owner) => owner,
        Some(owner) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "foreign_owner",
                format!(
                    "owner_id {owner} is not you: a car can only be registered for yourself \
                     (leave owner_id out, or use your own id)"
                ),
            ))
        }
    };
    let row = {
        let db = app.pool.get().await.map_err(ApiError::from_pool)?;
        let insert = db
            .prepare_cached(INSERT_CAR)
            .await
            .map_err(ApiError::from_db)?;
        db.query_opt(
            &insert,
            &[
                &owner,
                &car.license_plate,
                &car.vin,
                &car.make,
                &car.model,
                &car.year,
            ],
        )
        .await
        .map_err(ApiError::from_db)?
    };
    match row {
        Some(row) => {
            let stored = car_from_row(&row)?;
            let location = format!("/api/cars/{}", stored.id);
            Ok(created(&stored, location))
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_vin",
            format!("a car with VIN {} is already registered", car.vin),
        )),
    }
}

// ---- orders -------------------------------------------------------------------------

/// An order as order-service answers it, fields in its order. The twin books no catalog
/// items, so `items` is always empty, `total` zero and the work one half hour.
#[derive(Debug, Serialize)]
struct Order {
    id: Uuid,
    car_id: Uuid,
    user_id: Uuid,
    desired_time: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    bay: Option<i32>,
    assigned_to: Option<Uuid>,
    description: String,
    status: String,
    items: Vec<serde_json::Value>,
    total: Roubles,
    created_at: DateTime<Utc>,
}

/// Kopecks written as a JSON number of roubles (`3000.0`, `1499.99`), from the decimal
/// text as `api::money::Money` does.
#[derive(Debug, Clone, Copy)]
struct Roubles(i64);

impl Serialize for Roubles {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = format!("{}.{:02}", self.0 / 100, self.0 % 100);
        let roubles: f64 = text.parse().map_err(serde::ser::Error::custom)?;
        serializer.serialize_f64(roubles)
    }
}

/// Books one half hour from `$3` in the lowest bay (1 to `orders.shop.bays`) that no other
/// live order holds at any moment of it, as order-service places an order without work,
/// with the same range expressions, so the exclusion constraint's index answers. The twin
/// does not check the opening hours: it books any time. No row: every bay is taken.
const INSERT_ORDER: &str = "WITH want AS (\
       SELECT $3::timestamptz AS starts, $3::timestamptz + interval '30 minutes' AS ends\
     ), free AS (\
       SELECT min(b) AS bay FROM want, orders.shop AS shop, generate_series(1, shop.bays) AS b \
       WHERE NOT EXISTS (\
         SELECT 1 FROM orders.orders AS x \
         WHERE x.bay IS NOT NULL AND x.status <> 'cancelled' \
           AND int4range(x.bay, x.bay, '[]') && int4range(b, b, '[]') \
           AND tstzrange(x.desired_time, x.ends_at) && tstzrange(want.starts, want.ends))\
     ) \
     INSERT INTO orders.orders (car_id, user_id, desired_time, ends_at, bay, description, \
       status, total_kopecks, car_plate, car_make, car_model) \
     SELECT $1::uuid, $2::uuid, want.starts, want.ends, free.bay, $4::text, 'created', 0, \
       $5::text, $6::text, $7::text \
     FROM want, free WHERE free.bay IS NOT NULL \
     RETURNING id, car_id, user_id, desired_time, ends_at, bay, assigned_to, description, \
       status, total_kopecks, created_at";

fn order_from_row(row: &Row) -> Result<Order, ApiError> {
    let read = || -> Result<Order, tokio_postgres::Error> {
        Ok(Order {
            id: row.try_get(0)?,
            car_id: row.try_get(1)?,
            user_id: row.try_get(2)?,
            desired_time: row.try_get(3)?,
            ends_at: row.try_get(4)?,
            bay: row.try_get(5)?,
            assigned_to: row.try_get(6)?,
            description: row.try_get(7)?,
            status: row.try_get(8)?,
            items: Vec::new(),
            total: Roubles(row.try_get(9)?),
            created_at: row.try_get(10)?,
        })
    };
    read().map_err(|error| {
        ApiError::internal("a database query returned an unexpected result").with_detail(error)
    })
}

/// `POST /api/orders` `{car_id, desired_time, description?}`: the car is looked up at
/// car-service as the caller (so another user's car is 404), and the order is its owner's,
/// with the car's plate, make and model as car-service named them, in the lowest free bay for its half hour (none free: 409 `slot_taken`, as
/// order-service; a bay taken by a concurrent booking too, where order-service retries).
async fn create_order(
    State(app): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    rules::caller(&headers, &app.secret)?;
    let order = NewOrder::parse(&rules::json_object(&body)?).map_err(ApiError::invalid)?;
    // No pooled connection is held while car-service answers.
    let car = car_owner(&app, order.car_id, headers.get(header::AUTHORIZATION)).await?;
    let row = {
        let db = app.pool.get().await.map_err(ApiError::from_pool)?;
        let insert = db
            .prepare_cached(INSERT_ORDER)
            .await
            .map_err(ApiError::from_db)?;
        db.query_opt(
            &insert,
            &[
                &order.car_id,
                &car.owner_id,
                &order.desired_time,
                &order.description,
                &car.license_plate,
                &car.make,
                &car.model,
            ],
        )
        .await
        .map_err(|error| {
            // Another booking took the bay between the statement's read and its write.
            if error.code() == Some(&SqlState::EXCLUSION_VIOLATION) {
                ApiError::slot_taken(order.desired_time)
            } else {
                ApiError::from_db(error)
            }
        })?
        .ok_or_else(|| ApiError::slot_taken(order.desired_time))?
    };
    let stored = order_from_row(&row)?;
    let location = format!("/api/orders/{}", stored.id);
    Ok(created(&stored, location))
}

/// What an order keeps of its car: whose it is, and how car-service names it.
#[derive(Deserialize)]
struct CarBody {
    owner_id: Uuid,
    #[serde(default)]
    license_plate: Option<String>,
    #[serde(default)]
    make: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

/// `GET {car_service_url}/api/cars/{id}` with the caller's `Authorization`: the car's
/// owner and names, 404 `car_not_found`, or car-service failing in `api::upstream`'s codes.
async fn car_owner(
    app: &App,
    car_id: Uuid,
    authorization: Option<&HeaderValue>,
) -> Result<CarBody, ApiError> {
    let url = format!("{}/api/cars/{car_id}", app.car_service_url);
    let mut request = app
        .http
        .get(&url)
        .header(header::ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(authorization) = authorization {
        request = request.header(header::AUTHORIZATION, authorization.clone());
    }
    let response = request.send().await.map_err(|error| {
        if error.is_timeout() {
            car_service_timeout()
        } else {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "car_service_unavailable",
                "car-service is unavailable",
            )
        }
        .with_detail(format!("GET {url}: {error}"))
    })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|error| {
        if error.is_timeout() {
            car_service_timeout()
        } else {
            car_service_failed()
        }
        .with_detail(format!("GET {url}: {error}"))
    })?;
    match status {
        StatusCode::OK => serde_json::from_slice::<CarBody>(&body).map_err(|error| {
            car_service_failed().with_detail(format!(
                "car-service: answered 200 with an unreadable body: {error}"
            ))
        }),
        StatusCode::NOT_FOUND if error_code(&body).as_deref() == Some("car_not_found") => {
            Err(ApiError::car_not_found(car_id))
        }
        _ => Err(car_service_failed().with_detail(format!(
            "car-service: answered {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(512)])
        ))),
    }
}

fn error_code(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    body["error"]["code"].as_str().map(str::to_owned)
}

fn car_service_failed() -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "car_service_failed",
        "car-service failed to answer",
    )
}

fn car_service_timeout() -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "car_service_timeout",
        "car-service did not answer in time",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_numbers_of_roubles() {
        let text = |kopecks| serde_json::to_string(&Roubles(kopecks)).unwrap();
        assert_eq!(text(0), "0.0");
        assert_eq!(text(300_000), "3000.0");
        assert_eq!(text(149_999), "1499.99");
    }

    #[test]
    fn the_health_body_is_what_json_macro_writes() {
        let ours = serde_json::json!({"status": "ok", "service": "car-service"});
        assert_eq!(serde_json::to_vec(&ours).unwrap(), HEALTH);
    }

    #[test]
    fn wildcard_binds_are_reached_on_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(loopback(any).to_string(), "127.0.0.1:8080");
        let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(loopback(local), local);
    }
}
