//! What one instance's `Store` holds: WASI contexts, its resources, limits, and the component's
//! configuration. Built with the instance, and dropped with it: after one request, or after
//! several when the component reuses instances (crate::reuse).

use crate::bindings::fermyon::spin2_0_0::variables;
use crate::component::ComponentConfig;
use crate::guest_output::GuestOutput;
use crate::limits::{InstanceLimits, Limits};
use crate::observe::RequestId;
use crate::outbound::{Chaining, OutboundHttp};
use crate::postgres::Postgres;
use crate::redis::RedisClients;
use crate::variables::GetError;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// The app-wide services an instance reaches: the host's shared clients and the chaining
/// handle, nothing more of the app.
pub(crate) struct Capabilities<'a> {
    pub postgres: Arc<Postgres>,
    pub redis: Arc<RedisClients>,
    pub chaining: Arc<dyn Chaining>,
    pub limits: &'a Limits,
}

pub struct InstanceState {
    pub(crate) postgres: Arc<Postgres>,
    pub(crate) redis: Arc<RedisClients>,
    pub(crate) component: Arc<ComponentConfig>,
    pub(crate) table: ResourceTable,
    pub(crate) limits: InstanceLimits,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHttp,
}

impl InstanceState {
    /// The state of an instance serving the request (or message) `request_id`; its outbound
    /// requests carry that id.
    pub(crate) fn new(
        capabilities: Capabilities<'_>,
        component: Arc<ComponentConfig>,
        request_id: RequestId,
    ) -> Self {
        let Capabilities {
            postgres,
            redis,
            chaining,
            limits,
        } = capabilities;
        let wasi = WasiCtx::builder()
            .stdout(GuestOutput::Stdout)
            .stderr(GuestOutput::Stderr)
            .build();
        let hooks = OutboundHttp::new(
            chaining,
            component.clone(),
            request_id,
            limits.request_timeout,
        );
        let limits = InstanceLimits::new(limits, component.metrics.clone());
        Self {
            postgres,
            redis,
            component,
            table: ResourceTable::new(),
            limits,
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
        }
    }
}

impl InstanceState {
    /// Readies a reused instance for the request `request_id`.
    pub(crate) fn begin(&mut self, request_id: RequestId) {
        self.hooks.begin(request_id);
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl variables::Host for InstanceState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, variables::Error>> {
        Ok(self.component.variables.get(&name).map_err(|e| match e {
            GetError::InvalidName(m) => variables::Error::InvalidName(m),
            GetError::Undefined(m) => variables::Error::Undefined(m),
        }))
    }
}
