//! What one instance's `Store` holds: WASI contexts, its resources, limits, and the component's
//! configuration. Built fresh for every request and dropped with the instance.

use crate::app::{App, ComponentConfig};
use crate::bindings::fermyon::spin2_0_0::variables;
use crate::limits::InstanceLimits;
use crate::observe::RequestId;
use crate::outbound::OutboundHttp;
use crate::variables::GetError;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub struct InstanceState {
    pub(crate) app: Arc<App>,
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
        app: Arc<App>,
        component: Arc<ComponentConfig>,
        request_id: RequestId,
    ) -> Self {
        let limits = InstanceLimits::new(&app.limits, component.metrics.clone());
        let wasi = WasiCtx::builder().inherit_stdout().inherit_stderr().build();
        let hooks = OutboundHttp::new(app.clone(), component.clone(), request_id);
        Self {
            app,
            component,
            table: ResourceTable::new(),
            limits,
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
        }
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
