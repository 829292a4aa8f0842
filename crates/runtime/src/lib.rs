//! A Spin-compatible WebAssembly component host on wasmtime.
//!
//! It reads a Spin manifest (v2), serves its HTTP triggers and gives guests the Spin and WASI
//! interfaces they import. It knows nothing about the application it runs.

// The host logs through `tracing` (levels, spans, JSON lines); a print would bypass all three.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod admin;
pub mod admission;
pub mod allowed_hosts;
pub mod app;
mod app_metrics;
pub mod body;
pub mod compile;
pub mod component;
pub mod connection;
mod guest_output;
pub mod http_trigger;
pub mod limits;
pub mod manifest;
pub mod metrics;
pub mod observe;
pub mod outbound;
pub mod postgres;
pub mod redis;
pub mod redis_trigger;
pub mod reuse;
pub mod routes;
pub mod spin_headers;
pub mod state;
pub mod variables;

pub use admission::Concurrency;
pub use app::{App, AppOptions, LoadReport};
pub use compile::{CacheOutcome, CompileCache};
pub use connection::ConnectionLimits;
pub use limits::Limits;
pub use observe::RequestId;
pub use postgres::PostgresConfig;
pub use variables::{AppVariables, VariableSources};

/// Host bindings for the Spin interfaces in `wit/` (WASI comes from wasmtime-wasi{,-http}).
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "detailing:host/spin-host",
        imports: { default: async | trappable },
        with: {
            "spin:postgres/postgres.connection": crate::postgres::PgConnection,
            "fermyon:spin/redis.connection": crate::redis::RedisConnection,
        },
    });

    /// The guest side of `[[trigger.redis]]`: components that export `inbound-redis`.
    pub mod redis_guest {
        wasmtime::component::bindgen!({
            path: "../../wit",
            world: "detailing:host/redis-guest",
            imports: { default: async | trappable },
            exports: { default: async },
        });
    }
}
