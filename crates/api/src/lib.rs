//! What every component shares at its HTTP edge: the one JSON error shape
//! (`{"error":{"code","message","fields"?}}`), field-error collection, JSON bodies,
//! Spin variables and Postgres connections mapped to honest statuses.
//! Nothing here knows about cars or orders.

pub mod auth;
pub mod body;
pub mod config;
pub mod db;
mod error;
pub mod http;
pub mod json;
pub mod money;
pub mod openapi;
pub mod query;
pub mod routes;
pub mod testing;
pub mod upstream;

pub use crate::auth::Caller;
pub use error::{ApiError, FieldError, FieldErrors};
