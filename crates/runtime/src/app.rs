//! A loaded application: the engine, the linker with every capability, each component compiled
//! and pre-instantiated once, and the router. `serve` runs one request in a fresh instance, or
//! in an idle one when the component reuses instances (crate::reuse).

use crate::admission::Admission;
use crate::allowed_hosts::AllowedHosts;
use crate::bindings::redis_guest::RedisGuestPre;
use crate::body::error_response;
use crate::compile::{CacheOutcome, CompileCache};
pub use crate::component::ComponentConfig;
use crate::limits::{start_epoch_ticker, Limits};
use crate::manifest::RedisTrigger;
use crate::manifest::{LoadedManifest, RouteDecl};
use crate::observe::{self, RequestId};
use crate::outbound::{ChainedResponse, Chaining};
use crate::postgres::{Postgres, PostgresConfig};
use crate::redis::RedisClients;
use crate::reuse::{self, IdleBudget, InstancePool, ReusePolicy};
use crate::routes::Router;
use crate::spin_headers::{self, SpinRequestInfo};
use crate::state::{Capabilities, InstanceState};
use crate::variables::{AppVariables, VariableSources};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tracing::Instrument;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

/// How to load an application.
#[derive(Debug, Clone)]
pub struct AppOptions {
    pub manifest: PathBuf,
    pub variables: VariableSources,
    pub cache: CompileCache,
    pub limits: Limits,
    pub postgres: PostgresConfig,
}

/// A component ready to serve: its configuration, its pre-instantiated handles, one per
/// trigger interface it exports (HTTP, Redis, or both), and its idle instances.
pub struct LoadedComponent {
    pub config: Arc<ComponentConfig>,
    http: Option<ProxyPre<InstanceState>>,
    redis: Option<RedisGuestPre<InstanceState>>,
    /// Instances of this version kept for reuse; a hot swap drops them with the version.
    pool: InstancePool,
}

pub struct App {
    pub name: String,
    pub version: String,
    pub(crate) limits: Limits,
    pub(crate) postgres: Arc<Postgres>,
    redis: Arc<RedisClients>,
    engine: Engine,
    /// Kept for hot swap: a replacement is linked and compiled exactly like the original.
    linker: Linker<InstanceState>,
    cache: CompileCache,
    router: Router,
    redis_triggers: Vec<RedisTrigger>,
    components: RwLock<HashMap<String, Arc<LoadedComponent>>>,
    /// Instances all components together may keep idle: half the instance pool, so instances
    /// kept for reuse never leave a request without a slot.
    idle_budget: Arc<IdleBudget>,
    refused_connections: AtomicU64,
}

/// How a component load went, for startup output and tests.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub component: String,
    pub outcome: CacheOutcome,
    pub millis: u128,
}

impl App {
    pub fn load(options: AppOptions) -> Result<(Arc<App>, Vec<LoadReport>)> {
        let loaded = LoadedManifest::from_file(&options.manifest)?;
        let manifest = &loaded.manifest;
        let variables = AppVariables::resolve(&manifest.variables, &options.variables)?;
        let engine = options.limits.engine()?;
        start_epoch_ticker(&engine);
        let linker = linker(&engine)?;
        if let Some(unknown) = options
            .limits
            .component_concurrency
            .keys()
            .find(|id| !manifest.component.contains_key(*id))
        {
            anyhow::bail!("a concurrency cap names `{unknown}`, which the app does not have");
        }

        let idle_budget = Arc::new(IdleBudget::new(
            (options.limits.max_instances as usize / 2).max(1),
        ));
        let mut components = HashMap::new();
        let mut reports = Vec::new();
        for (id, decl) in &manifest.component {
            let started = Instant::now();
            let allowed: Vec<String> = decl
                .allowed_outbound_hosts
                .iter()
                .map(|h| variables.render(h))
                .collect::<Result<_>>()
                .with_context(|| format!("component `{id}` allowed_outbound_hosts"))?;
            let config = ComponentConfig {
                id: id.clone(),
                allowed_hosts: AllowedHosts::parse(&allowed)
                    .with_context(|| format!("component `{id}`"))?,
                variables: variables
                    .render_component(&decl.variables)
                    .with_context(|| format!("component `{id}` variables"))?,
                metrics: Default::default(),
                admission: options
                    .limits
                    .component_concurrency
                    .get(id)
                    .map(|cap| Arc::new(Admission::new(*cap))),
                reuse: ReusePolicy::resolve(&options.limits.reuse, decl.tool.get(reuse::TOOL))
                    .with_context(|| format!("component `{id}` [tool.{}]", reuse::TOOL))?,
            };
            let (component, outcome) = options.cache.load(&engine, &loaded.source_path(decl))?;
            let serves = Serves {
                http: manifest.trigger.http.iter().any(|t| &t.component == id),
                redis: manifest.trigger.redis.iter().any(|t| &t.component == id),
            };
            let (http, redis) = prepare(&linker, &component, id, serves)?;
            components.insert(
                id.clone(),
                Arc::new(LoadedComponent {
                    pool: InstancePool::new(config.reuse, idle_budget.clone()),
                    config: Arc::new(config),
                    http,
                    redis,
                }),
            );
            reports.push(LoadReport {
                component: id.clone(),
                outcome,
                millis: started.elapsed().as_millis(),
            });
        }

        let mut router = Router::new();
        for trigger in &manifest.trigger.http {
            if let RouteDecl::Path(route) = &trigger.route {
                if let Some(previous) = router.add(route, &trigger.component) {
                    tracing::warn!(
                        "duplicate route `{route}`: `{}` replaces `{previous}`",
                        trigger.component
                    );
                }
            }
        }

        let mut redis_triggers = Vec::new();
        for trigger in &manifest.trigger.redis {
            let address = trigger
                .address
                .as_ref()
                .or(manifest
                    .application
                    .trigger
                    .redis
                    .as_ref()
                    .map(|r| &r.address))
                .map(|address| variables.render(address))
                .transpose()?
                .context("a Redis trigger has no address")?;
            redis_triggers.push(RedisTrigger {
                address,
                channel: variables.render(&trigger.channel)?,
                component: trigger.component.clone(),
            });
        }

        let app = App {
            name: manifest.application.name.clone(),
            version: manifest.application.version.clone(),
            limits: options.limits,
            postgres: Arc::new(Postgres::new(options.postgres)),
            redis: Arc::default(),
            engine,
            linker,
            cache: options.cache,
            router,
            redis_triggers,
            components: RwLock::new(components),
            idle_budget,
            refused_connections: AtomicU64::new(0),
        };
        let app = Arc::new(app);
        start_idle_sweeper(&app);
        Ok((app, reports))
    }

    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Hot swap: replaces component `id` with `wasm` (a wasip1 module or a component) while the
    /// app serves. Requests already running keep the instance they started on; the next ones
    /// get the new version; no other component is touched. A replacement that does not compile,
    /// lacks an import, or no longer exports what the triggers call is refused and the old
    /// version keeps serving.
    pub fn swap(&self, id: &str, wasm: &[u8]) -> Result<LoadReport> {
        let started = Instant::now();
        let old = self
            .component(id)
            .with_context(|| format!("the app has no component `{id}`"))?;
        let (component, outcome) = self
            .cache
            .load_bytes(&self.engine, wasm)
            .with_context(|| format!("the new `{id}` does not compile"))?;
        let serves = Serves {
            http: old.http.is_some(),
            redis: old.redis.is_some(),
        };
        let (http, redis) = prepare(&self.linker, &component, id, serves)?;
        let replacement = Arc::new(LoadedComponent {
            pool: InstancePool::new(old.config.reuse, self.idle_budget.clone()),
            config: old.config.clone(),
            http,
            redis,
        });
        self.components
            .write()
            .expect("components lock")
            .insert(id.to_owned(), replacement);
        let report = LoadReport {
            component: id.to_owned(),
            outcome,
            millis: started.elapsed().as_millis(),
        };
        tracing::info!(
            component = id,
            millis = report.millis,
            "component swapped in"
        );
        Ok(report)
    }

    /// A connection was turned away at the open-connection cap.
    pub(crate) fn note_refused_connection(&self) {
        self.refused_connections.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused_connections(&self) -> u64 {
        self.refused_connections.load(Ordering::Relaxed)
    }

    /// The ids of the app's components.
    pub fn component_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .components
            .read()
            .expect("components lock")
            .keys()
            .cloned()
            .collect();
        ids.sort();
        ids
    }

    /// Every component's configuration (and metrics), in no particular order.
    pub(crate) fn component_configs(&self) -> Vec<Arc<ComponentConfig>> {
        self.loaded_components()
            .into_iter()
            .map(|loaded| loaded.config.clone())
            .collect()
    }

    /// Every component as loaded now (the current version of each), in no particular order.
    fn loaded_components(&self) -> Vec<Arc<LoadedComponent>> {
        self.components
            .read()
            .expect("components lock")
            .values()
            .cloned()
            .collect()
    }

    /// How many instances each component keeps idle now, by component id.
    pub(crate) fn idle_instances(&self) -> Vec<(String, usize)> {
        let mut idle: Vec<(String, usize)> = self
            .loaded_components()
            .into_iter()
            .map(|loaded| (loaded.config.id.clone(), loaded.pool.idle_count()))
            .collect();
        idle.sort();
        idle
    }

    /// The app's `[[trigger.redis]]`s with their addresses resolved.
    pub fn redis_triggers(&self) -> &[RedisTrigger] {
        &self.redis_triggers
    }

    /// A fresh store for one run of `config`'s component, with its limits and deadline.
    fn store(
        self: &Arc<Self>,
        config: Arc<ComponentConfig>,
        request_id: RequestId,
    ) -> Store<InstanceState> {
        let capabilities = Capabilities {
            postgres: self.postgres.clone(),
            redis: self.redis.clone(),
            chaining: self.clone(),
            limits: &self.limits,
        };
        let state = InstanceState::new(capabilities, config, request_id);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        self.limits.arm_deadline(&mut store);
        store
    }

    /// Runs one Redis message in a fresh instance of `component`, within the request limits.
    /// The message gets a request id of its own, so the instance's outbound calls carry one.
    pub async fn handle_redis_message(
        self: Arc<Self>,
        component: &str,
        payload: Vec<u8>,
    ) -> Result<()> {
        let loaded = self
            .component(component)
            .with_context(|| format!("no component `{component}`"))?;
        let pre = loaded
            .redis
            .clone()
            .with_context(|| format!("component `{component}` does not export inbound-redis"))?;
        let id = RequestId::generate();
        let span = tracing::info_span!("message", request_id = %id.as_str(), component);
        let mut store = self.store(loaded.config.clone(), id);
        let run = async {
            let guest = pre.instantiate_async(&mut store).await?;
            guest
                .fermyon_spin_inbound_redis()
                .call_handle_message(&mut store, &payload)
                .await
        };
        let outcome = tokio::time::timeout(self.limits.request_timeout, run)
            .instrument(span)
            .await;
        match outcome {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => anyhow::bail!("the component reported {error:?}"),
            Ok(Err(trap)) if is_interrupt(&trap) => {
                loaded.config.metrics.deadline_hit();
                anyhow::bail!("the component did not finish within its deadline")
            }
            Ok(Err(trap)) => Err(anyhow::Error::from(trap).context("the component trapped")),
            Err(_) => {
                loaded.config.metrics.deadline_hit();
                anyhow::bail!("the component did not finish within its deadline")
            }
        }
    }

    pub(crate) fn component(&self, id: &str) -> Option<Arc<LoadedComponent>> {
        self.components
            .read()
            .expect("components lock")
            .get(id)
            .cloned()
    }

    /// Service chaining: `http://<id>.spin.internal/<path>` as Spin presents it to the callee,
    /// recorded as a request of the callee under the id the caller's request carries.
    async fn chained(
        self: Arc<Self>,
        target: String,
        mut request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, wasmtime_wasi_http::Error> {
        let Some(loaded) = self.component(&target) else {
            tracing::error!("service chaining to unknown component `{target}`");
            return Err(wasmtime_wasi_http::Error::DestinationNotFound);
        };
        let info = SpinRequestInfo::chained(request.uri());
        spin_headers::apply(request.headers_mut(), &info);
        // The caller's outbound hook has set a sane id; `of` only guards against a future path
        // that does not.
        let id = RequestId::of(request.headers());
        id.set(request.headers_mut());
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let config = loaded.config.clone();
        let work = self.serve(loaded, request, id.clone());
        Ok(observe::request(&config, &id, &method, &path, work).await)
    }

    /// Runs one request in an instance of `loaded` (a fresh one, or an idle one when the
    /// component reuses instances) and returns its response, or a JSON error when the guest
    /// traps, exceeds its limits or never answers.
    pub(crate) async fn serve(
        self: Arc<Self>,
        loaded: Arc<LoadedComponent>,
        request: http::Request<WasiBody>,
        request_id: RequestId,
    ) -> http::Response<HyperOutgoingBody> {
        let Some(http) = loaded.http.clone() else {
            return error_response(
                500,
                "component_failed",
                "the component does not handle HTTP requests",
            );
        };
        let (mut store, reused) = match loaded.pool.take() {
            Some(idle) => {
                let mut store = idle.store;
                store.data_mut().begin(request_id);
                self.limits.arm_deadline(&mut store);
                (store, Some((idle.proxy, idle.left)))
            }
            None => (self.store(loaded.config.clone(), request_id), None),
        };
        loaded.config.metrics.instance_used(reused.is_some());

        let (sender, receiver) = tokio::sync::oneshot::channel();
        let prepared = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)
            .and_then(|req| Ok((req, store.data_mut().http().new_response_outparam(sender)?)));
        let (req, out) = match prepared {
            Ok(pair) => pair,
            Err(e) => return error_response(400, "bad_request", &format!("{e:#}")),
        };

        let timeout = self.limits.request_timeout;
        let config = loaded.config.clone();
        let id = &config.id;
        let keeper = loaded.clone();
        // The guest runs in a task of its own: it carries the request's span, so whatever the
        // host logs for it (traps, refused outbound calls) names the request. An instance that
        // came back from its request without a fault goes back to the pool when the component
        // reuses instances; any failure drops it with its store.
        let task = tokio::spawn(
            async move {
                let run = async {
                    let (proxy, left) = match reused {
                        Some(pair) => pair,
                        None => (
                            http.instantiate_async(&mut store).await?,
                            keeper.pool.draw_requests(),
                        ),
                    };
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut store, req, out)
                        .await?;
                    Ok((proxy, left))
                };
                match tokio::time::timeout(timeout, run).await {
                    Ok(Ok((proxy, left))) => {
                        keeper.pool.give_back(store, proxy, left.saturating_sub(1));
                        Ok(())
                    }
                    Ok(Err(e)) => Err(Failure::Guest(e)),
                    Err(_) => Err(Failure::Deadline),
                }
            }
            .in_current_span(),
        );

        match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => {
                tracing::error!(component = %id, "guest answered with error code {code:?}");
                error_response(
                    500,
                    "component_error",
                    &format!("the component failed: {code:?}"),
                )
            }
            Err(_) => match task.await {
                Ok(Err(Failure::Deadline)) => deadline_response(&config, timeout),
                Ok(Err(Failure::Guest(e))) if is_interrupt(&e) => {
                    deadline_response(&config, timeout)
                }
                Ok(Err(Failure::Guest(e))) => {
                    tracing::error!(component = %id, "component trapped: {e:?}");
                    error_response(
                        500,
                        "component_failed",
                        "the component failed while handling the request",
                    )
                }
                Ok(Ok(())) => {
                    tracing::error!(component = %id, "component returned without a response");
                    error_response(
                        500,
                        "component_failed",
                        "the component returned no response",
                    )
                }
                Err(join) => {
                    tracing::error!(component = %id, "request task failed: {join}");
                    error_response(
                        500,
                        "component_failed",
                        "the component failed while handling the request",
                    )
                }
            },
        }
    }
}

enum Failure {
    Guest(wasmtime::Error),
    Deadline,
}

fn is_interrupt(e: &wasmtime::Error) -> bool {
    matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    )
}

fn deadline_response(
    component: &ComponentConfig,
    timeout: std::time::Duration,
) -> http::Response<HyperOutgoingBody> {
    component.metrics.deadline_hit();
    tracing::error!(component = %component.id, "request stopped at its {timeout:?} deadline");
    error_response(
        504,
        "deadline_exceeded",
        &format!(
            "the component did not answer within {} ms",
            timeout.as_millis()
        ),
    )
}

impl Chaining for App {
    fn serve_chained(
        self: Arc<Self>,
        target: String,
        request: http::Request<WasiBody>,
    ) -> ChainedResponse {
        Box::pin(self.chained(target, request))
    }
}

/// Drops instances idle past their timeout, a few times per shortest timeout, until the app
/// is dropped; started only when some component reuses instances.
fn start_idle_sweeper(app: &Arc<App>) {
    let shortest = app
        .loaded_components()
        .iter()
        .filter(|c| c.pool.reuses())
        .map(|c| c.pool.shortest_idle())
        .min();
    let Some(shortest) = shortest else {
        return;
    };
    let every = (shortest / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let app = Arc::downgrade(app);
    std::thread::Builder::new()
        .name("idle-instances".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(app) = app.upgrade() else { break };
            for component in app.loaded_components() {
                component.pool.sweep();
            }
        })
        .expect("cannot start the idle-instance sweeper thread");
}

/// Which trigger interfaces a component must export.
#[derive(Debug, Clone, Copy)]
struct Serves {
    http: bool,
    redis: bool,
}

/// A component's pre-instantiated handles, one per trigger interface it exports.
type Exports = (
    Option<ProxyPre<InstanceState>>,
    Option<RedisGuestPre<InstanceState>>,
);

/// Pre-instantiates `component` for each trigger interface it exports, and refuses it when it
/// lacks one its triggers call (every component must serve HTTP unless only Redis uses it,
/// since any component can be reached by chaining).
fn prepare(
    linker: &Linker<InstanceState>,
    component: &wasmtime::component::Component,
    id: &str,
    serves: Serves,
) -> Result<Exports> {
    let pre = linker
        .instantiate_pre(component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("component `{id}` needs an import this host lacks"))?;
    let http = ProxyPre::new(pre.clone()).ok();
    let redis = RedisGuestPre::new(pre).ok();
    if http.is_none() && (serves.http || !serves.redis) {
        anyhow::bail!("component `{id}` does not export wasi:http/incoming-handler");
    }
    if redis.is_none() && serves.redis {
        anyhow::bail!("component `{id}` does not export fermyon:spin/inbound-redis");
    }
    Ok((http, redis))
}

/// Every capability the host offers, linked once per engine.
fn linker(engine: &Engine) -> Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    crate::bindings::SpinHost::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
    crate::bindings::redis_guest::fermyon::spin::redis_types::add_to_linker::<_, HasSelf<_>>(
        &mut linker,
        |state| state,
    )?;
    Ok(linker)
}
