//! Loading the application and serving HTTP the way `spin up` does: a fresh instance per
//! request of a WASIp2 component, reused instances of a WASIp3 one (as Spin 4 does,
//! `server/p3.rs`), Spin's request headers, Spin's answers to unrouted and failed requests.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::ProxyHandler;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::clock::ClockSource;
use crate::kv::{self, AllowedStores, Stores};
use crate::manifest::Manifest;
use crate::outbound::{pooled_client, AllowedHosts, OutboundHooks, PooledClient};
use crate::routing::{self, Route};
use crate::runtime_config::{self, StoreDefinition};
use crate::tls::TlsOptions;
use crate::variables::{AppVariables, LiveVariables};

// Operating the host: access log, metrics, graceful stop, the sweep schedule.
mod lifecycle;
// Reused instances of WASIp3 components.
mod p3;
pub use lifecycle::{InFlight, Stopped};

/// How to load an application.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Path of `spin.toml`.
    pub manifest: PathBuf,
    /// Runtime config file, if any.
    pub runtime_config: Option<PathBuf>,
    /// The environment `SPIN_VARIABLE_*` values are read from.
    pub env: HashMap<String, String>,
    /// The wall clock components read (the system clock unless a test shifts it).
    pub clock: ClockSource,
    /// Outbound TLS: extra trusted CA files (`--extra-ca`).
    pub tls: TlsOptions,
    /// Limit of one key-value call (`--store-timeout`; [`kv::DEFAULT_STORE_TIMEOUT`] if unset).
    pub store_timeout: Option<std::time::Duration>,
    /// How long an idle WASIp3 instance is kept for reuse ([`p3::IDLE_TIMEOUT`], Spin's
    /// default, if unset; tests that count instances set it long).
    pub instance_idle_timeout: Option<std::time::Duration>,
    /// Requests one WASIp3 instance serves at once ([`p3::MAX_CONCURRENT`], Spin's default,
    /// if unset; `--max-instance-concurrent-reuse-count`, as Spin's flag).
    pub instance_concurrency: Option<usize>,
}

impl AppOptions {
    /// Options reading variables from this process's environment.
    pub fn new(manifest: impl Into<PathBuf>, runtime_config: Option<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            runtime_config,
            env: std::env::vars().collect(),
            ..Self::default()
        }
    }
}

/// How a component's requests are served.
enum Handler {
    /// `wasi:http/incoming-handler@0.2.0`: a fresh instance per request, as `spin up` does.
    P2(ProxyPre<HostState>),
    /// `wasi:http/handler@0.3.0`: reused instances, as Spin 4 does (`server/p3.rs`).
    P3(ProxyHandler<p3::Instances>),
}

struct LoadedComponent {
    id: String,
    handler: Handler,
    factory: StateFactory,
    /// Its `[component.<id>.variables]` templates, expanded again by [`App::set_variables`].
    templates: BTreeMap<String, String>,
    /// WASIp2 instances created (one per request).
    p2_instances: AtomicU64,
}

/// What each instance of one component is given: its host state is made from this.
#[derive(Clone)]
pub struct StateFactory {
    allowed_hosts: Arc<AllowedHosts>,
    allowed_stores: AllowedStores,
    variables: Arc<LiveVariables>,
    stores: Arc<Stores>,
    client: PooledClient,
    metrics: Arc<crate::metrics::Metrics>,
    clock: ClockSource,
}

impl StateFactory {
    /// A new instance's state: its own resource table and contexts, nothing of another's.
    fn state(&self) -> HostState {
        HostState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder()
                .inherit_stdout()
                .inherit_stderr()
                .wall_clock(self.clock.wall_clock())
                .build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                allowed: self.allowed_hosts.clone(),
                client: self.client.clone(),
                metrics: self.metrics.clone(),
            },
            stores: self.stores.clone(),
            allowed_stores: self.allowed_stores.clone(),
            variables: self.variables.clone(),
        }
    }
}

/// A loaded application, ready to serve.
pub struct App {
    name: String,
    manifest: Manifest,
    routes: Vec<Route>,
    components: Vec<LoadedComponent>,
    stores: Arc<Stores>,
    // Operations (server/lifecycle.rs).
    metrics: Arc<crate::metrics::Metrics>,
    in_flight: InFlight,
    variables: RwLock<AppVariables>,
}

/// Per-instance state.
pub struct HostState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    pub(crate) stores: Arc<Stores>,
    pub(crate) allowed_stores: AllowedStores,
    pub(crate) variables: Arc<LiveVariables>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Concurrent WASIp2 instances the host can hold (Spin also pools instances).
const MAX_INSTANCES: u32 = 1000;
/// Concurrent WASIp3 instances: each serves up to [`p3::MAX_CONCURRENT`] requests at once.
const MAX_P3_INSTANCES: u32 = 256;

/// An engine for WASIp2 components (`concurrency` false: wasmtime's component-model-async
/// bookkeeping, ~10-16% of /health, is not paid) or for WASIp3 ones (`concurrency` true).
fn engine(concurrency: bool) -> Result<Engine> {
    let instances = if concurrency {
        MAX_P3_INSTANCES
    } else {
        MAX_INSTANCES
    };
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.concurrency_support(concurrency);
    if concurrency {
        config.wasm_component_model_async(true);
    }
    // Pooled instance slots make the per-request instantiation cheap; a slot reserves
    // address space, not memory. Returned slots are reset by rewriting only the pages the
    // instance dirtied (PAGEMAP_SCAN, Linux >= 6.7) instead of madvise, whose TLB
    // shootdowns were the largest cost per request; this doubled /health throughput.
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(256 << 20)
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(4 << 20)
        .async_stack_keep_resident(128 << 10)
        .decommit_batch_size(64)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

/// Spin's interfaces for `engine`: WASI and `wasi:http` 0.2 for every component, and 0.3 as
/// well for WASIp3 ones (our p3 build still imports the 0.2 store, outbound HTTP and clocks).
fn linker(engine: &Engine, p3: bool) -> Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    if p3 {
        wasmtime_wasi::p3::add_to_linker(&mut linker)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker)?;
    }
    kv::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// The WASIp3 engine and linker, made when the first WASIp3 component is loaded.
#[derive(Default)]
struct P3Engine(Option<(Engine, Linker<HostState>)>);

impl P3Engine {
    fn get(&mut self) -> Result<&(Engine, Linker<HostState>)> {
        if self.0.is_none() {
            let engine = engine(true)?;
            let linker = linker(&engine, true)?;
            self.0 = Some((engine, linker));
        }
        self.0
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no WASIp3 engine"))
    }
}

impl App {
    /// Reads the manifest and runtime config, opens the stores, compiles the components.
    pub async fn load(options: &AppOptions) -> Result<Arc<Self>> {
        let manifest = Manifest::load(&options.manifest)?;
        let variables = AppVariables::resolve(&manifest, &options.env)?;
        let definitions = runtime_config::load(options.runtime_config.as_deref())?;
        let mut stores = open_stores(&manifest, &definitions).await?;
        stores.set_timeout(options.store_timeout.unwrap_or(kv::DEFAULT_STORE_TIMEOUT));
        let stores = Arc::new(stores);
        let client = pooled_client(crate::tls::client_config(&options.tls)?);

        let metrics: Arc<crate::metrics::Metrics> = Arc::default();
        let engine = engine(false)?;
        let linker = linker(&engine, false)?;
        let mut p3_engine = P3Engine::default();

        let cache_dir = manifest.dir.join(".spin").join("host-cache");
        let mut components = Vec::new();
        let mut index = HashMap::new();
        for (id, decl) in &manifest.components {
            let hosts: Vec<String> = decl
                .allowed_outbound_hosts
                .iter()
                .map(|entry| variables.expand(entry))
                .collect::<Result<_>>()?;
            let factory = StateFactory {
                allowed_hosts: Arc::new(AllowedHosts::from_entries(&hosts)),
                allowed_stores: Arc::new(decl.key_value_stores.iter().cloned().collect()),
                variables: Arc::new(LiveVariables::new(
                    variables.for_component(id, &decl.variables)?,
                )),
                stores: stores.clone(),
                client: client.clone(),
                metrics: metrics.clone(),
                clock: options.clock.clone(),
            };
            let imports_lacking = || format!("component {id:?} imports something this host lacks");
            let bytes = crate::cache::read(&decl.source)?;
            // A WASIp3 component does not validate without component-model-async.
            let handler = match crate::cache::load_component(&engine, "p2", &bytes, &cache_dir) {
                Ok(component) => Handler::P2(ProxyPre::new(
                    linker
                        .instantiate_pre(&component)
                        .map_err(anyhow::Error::from)
                        .with_context(imports_lacking)?,
                )?),
                Err(p2_error) => {
                    let (engine, linker) = p3_engine.get()?;
                    let component =
                        crate::cache::load_component(engine, "p3", &bytes, &cache_dir)
                            .map_err(|p3_error| {
                                anyhow::anyhow!(
                                    "cannot compile {}: as WASIp2: {p2_error:#}; as WASIp3: {p3_error:#}",
                                    decl.source.display()
                                )
                            })?;
                    let pre = ServicePre::new(
                        linker
                            .instantiate_pre(&component)
                            .map_err(anyhow::Error::from)
                            .with_context(imports_lacking)?,
                    )
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!("component {id:?} exports neither wasi:http 0.2 nor 0.3")
                    })?;
                    Handler::P3(ProxyHandler::new(p3::Instances::new(
                        pre,
                        factory.clone(),
                        options.instance_idle_timeout.unwrap_or(p3::IDLE_TIMEOUT),
                        options
                            .instance_concurrency
                            .unwrap_or(p3::MAX_CONCURRENT)
                            .max(1),
                    )))
                }
            };
            index.insert(id.clone(), components.len());
            components.push(LoadedComponent {
                id: id.clone(),
                handler,
                factory,
                templates: decl.variables.clone(),
                p2_instances: AtomicU64::new(0),
            });
        }
        let routes = manifest
            .routes
            .iter()
            .map(|r| Route {
                pattern: r.route.clone(),
                component: index[&r.component],
            })
            .collect();

        Ok(Arc::new(Self {
            name: manifest.name.clone(),
            manifest,
            routes,
            components,
            stores,
            metrics,
            in_flight: InFlight::default(),
            variables: RwLock::new(variables),
        }))
    }

    /// Replaces the application's variable values as if the environment were now `env`
    /// (templates in `allowed_outbound_hosts` stay as resolved at load, as in Spin): every
    /// later `variables.get` of every instance sees them, a reused WASIp3 one included.
    pub fn set_variables(&self, env: &HashMap<String, String>) -> Result<()> {
        let variables = AppVariables::resolve(&self.manifest, env)?;
        let mut replaced = Vec::new();
        for component in &self.components {
            replaced.push(variables.for_component(&component.id, &component.templates)?);
        }
        for (component, values) in self.components.iter().zip(replaced) {
            component.factory.variables.replace(values);
        }
        *self
            .variables
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = variables;
        Ok(())
    }

    /// An application variable's current value.
    pub(crate) fn variable(&self, name: &str) -> Option<String> {
        self.variables
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(name)
    }

    /// Instances of component `id` created so far (WASIp2: one per request; WASIp3: fewer,
    /// as instances are reused), and whether it is WASIp3.
    pub fn instances_created(&self, id: &str) -> Option<(u64, bool)> {
        let component = self.components.iter().find(|c| c.id == id)?;
        Some(match &component.handler {
            Handler::P2(_) => (component.p2_instances.load(Ordering::Relaxed), false),
            Handler::P3(handler) => (handler.state().created(), true),
        })
    }

    /// Store operation counts per label.
    pub fn store_stats(&self) -> serde_json::Value {
        self.stores.stats()
    }

    /// Accepts connections forever.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        self.serve_until(listener, std::future::pending(), std::time::Duration::MAX)
            .await
            .map(|_| ())
    }

    /// Serves one request; `route` is set to the manifest route that serves it.
    async fn handle<B>(
        &self,
        mut request: hyper::Request<B>,
        client: SocketAddr,
        route: &mut Option<String>,
    ) -> Result<hyper::Response<HyperOutgoingBody>>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        // Spin closes the connection, sending nothing, without a usable Host.
        let Some(host) = request
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
        else {
            bail!("request without Host");
        };
        if request
            .uri()
            .authority()
            .is_some_and(|authority| authority.as_str() != host)
        {
            bail!("absolute-form URI disagrees with Host");
        }
        let path = request.uri().path().to_string();
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_else(|| path.clone());

        if let Some(builtin) = self.builtin(&path) {
            *route = Some(path.clone());
            return Ok(builtin);
        }
        if request.headers().values().any(|v| v.to_str().is_err()) {
            eprintln!("ERROR host: Error processing request: incomplete utf-8 byte sequence");
            return Ok(empty(500));
        }
        let Some(matched) = routing::find(&self.routes, &path) else {
            return Ok(empty(404));
        };
        let component = &self.components[matched.component];
        *route = Some(matched.pattern.clone());

        let headers = request.headers_mut();
        for (name, value) in [
            ("spin-full-url", format!("http://{host}{path_and_query}")),
            ("spin-path-info", matched.path_info.clone()),
            ("spin-matched-route", matched.pattern.clone()),
            ("spin-raw-component-route", matched.pattern.clone()),
            ("spin-component-route", matched.component_route.clone()),
            ("spin-base-path", "/".to_string()),
            ("spin-client-addr", client.to_string()),
        ] {
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.append(http::HeaderName::from_static(name), value);
            }
        }

        let pre = match &component.handler {
            Handler::P3(handler) => return Ok(self.handle_p3(handler, request, &host).await),
            Handler::P2(pre) => pre.clone(),
        };
        component.p2_instances.fetch_add(1, Ordering::Relaxed);
        let mut store = Store::new(pre.engine(), component.factory.state());
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let id = component.id.clone();
        // The guest runs in its own task, as in Spin: it finishes even if the client goes
        // away mid-request (hyper drops a connection's futures when it reads EOF).
        let running = self.in_flight.enter();
        let task = tokio::spawn(async move {
            let _running = running;
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });
        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => {
                eprintln!("ERROR host: component {id:?} answered with error {code:?}");
                Ok(empty(500))
            }
            Err(_) => {
                let reason = match task.await {
                    Ok(Ok(())) => {
                        "guest failed to produce a response prior to returning".to_string()
                    }
                    Ok(Err(error)) => format!("guest invocation failed: {error:?}"),
                    Err(error) => format!("guest task failed: {error}"),
                };
                eprintln!("ERROR host: Error processing request: {reason}");
                Ok(empty(500))
            }
        }
    }

    /// Serves one request with a (possibly reused) instance of a WASIp3 component.
    async fn handle_p3<B>(
        &self,
        handler: &ProxyHandler<p3::Instances>,
        request: hyper::Request<B>,
        host: &str,
    ) -> hyper::Response<HyperOutgoingBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let _running = self.in_flight.enter();
        let (mut parts, body) = request.into_parts();
        // As Spin does: the guest sees the scheme and the Host as the URI's authority.
        let mut uri = parts.uri.clone().into_parts();
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = host.parse().ok();
        if let Ok(full) = http::Uri::from_parts(uri) {
            parts.uri = full;
        }
        let request = http::Request::from_parts(parts, body.map_err(Into::into).boxed_unsync());
        match handler.handle((), request).await {
            Ok(response) => response,
            Err(error) => {
                eprintln!(
                    "ERROR host: Error processing request: guest invocation failed: {error:?}"
                );
                empty(500)
            }
        }
    }

    fn builtin(&self, path: &str) -> Option<hyper::Response<HyperOutgoingBody>> {
        match path {
            "/.well-known/spin/health" => Some(full(200, "text/plain", Bytes::from_static(b"OK"))),
            "/.well-known/spin/info" => {
                let info =
                    serde_json::json!({ "name": self.name, "version": env!("CARGO_PKG_VERSION") });
                Some(full(200, "application/json", Bytes::from(info.to_string())))
            }
            _ => None,
        }
    }
}

async fn open_stores(
    manifest: &Manifest,
    definitions: &std::collections::BTreeMap<String, StoreDefinition>,
) -> Result<Stores> {
    let mut needed = HashSet::new();
    for (id, component) in &manifest.components {
        for label in &component.key_value_stores {
            if label != "default" && !definitions.contains_key(label) {
                bail!("unknown key_value_stores label {label:?} for component {id:?}");
            }
            needed.insert(label.clone());
        }
    }
    let mut stores = Stores::default();
    let mut labels: Vec<_> = needed.into_iter().collect();
    labels.sort();
    for label in labels {
        let definition = definitions
            .get(&label)
            .cloned()
            .unwrap_or_else(|| StoreDefinition::Sqlite(default_store_path(&manifest.dir)));
        let backend = match definition {
            StoreDefinition::Sqlite(path) => kv::open_sqlite(&path, &label)?,
            StoreDefinition::Redis(url) => kv::open_redis(&url)?,
        };
        stores.insert(&label, backend);
    }
    Ok(stores)
}

/// Spin's default store when no runtime config defines `default`.
pub fn default_store_path(app_dir: &Path) -> PathBuf {
    app_dir.join(".spin").join("sqlite_key_value.db")
}

fn full(status: u16, content_type: &str, body: Bytes) -> hyper::Response<HyperOutgoingBody> {
    let length = body.len();
    let mut response = hyper::Response::new(
        Full::new(body)
            .map_err(|e: Infallible| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_str(content_type)
            .unwrap_or(http::HeaderValue::from_static("text/plain")),
    );
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(length),
    );
    response
}

/// Spin's own empty answers (404 unrouted, 500 failed) carry `content-length: 0`.
fn empty(status: u16) -> hyper::Response<HyperOutgoingBody> {
    let mut response = full(status, "text/plain", Bytes::new());
    response.headers_mut().remove(http::header::CONTENT_TYPE);
    response
}
