//! Loading the application and serving HTTP the way `spin up` does: a fresh instance per
//! request, Spin's request headers, Spin's answers to unrouted and failed requests.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::clock::ClockSource;
use crate::kv::{self, AllowedStores, Stores};
use crate::manifest::Manifest;
use crate::outbound::{pooled_client, AllowedHosts, OutboundHooks, PooledClient};
use crate::routing::{self, Route};
use crate::runtime_config::{self, StoreDefinition};
use crate::tls::TlsOptions;
use crate::variables::{AppVariables, ComponentVariables};

// Operating the host: access log, metrics, graceful stop, the sweep schedule.
mod lifecycle;
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

struct LoadedComponent {
    id: String,
    pre: ProxyPre<HostState>,
    allowed_hosts: Arc<AllowedHosts>,
    allowed_stores: AllowedStores,
    variables: Arc<ComponentVariables>,
}

/// A loaded application, ready to serve.
pub struct App {
    name: String,
    engine: Engine,
    routes: Vec<Route>,
    components: Vec<LoadedComponent>,
    stores: Arc<Stores>,
    client: PooledClient,
    clock: ClockSource,
    // Operations (server/lifecycle.rs).
    metrics: Arc<crate::metrics::Metrics>,
    in_flight: InFlight,
    variables: AppVariables,
}

/// Per-instance state.
pub struct HostState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    pub(crate) stores: Arc<Stores>,
    pub(crate) allowed_stores: AllowedStores,
    pub(crate) variables: Arc<ComponentVariables>,
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

/// Concurrent instances the host can hold (Spin also pools instances).
const MAX_INSTANCES: u32 = 1000;

fn engine() -> Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    // Pooled instance slots make the per-request instantiation cheap; a slot reserves
    // address space, not memory. Returned slots are reset by rewriting only the pages the
    // instance dirtied (PAGEMAP_SCAN, Linux >= 6.7) instead of madvise, whose TLB
    // shootdowns were the largest cost per request; this doubled /health throughput.
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 4)
        .total_memories(MAX_INSTANCES)
        .total_tables(MAX_INSTANCES * 4)
        .total_stacks(MAX_INSTANCES)
        .max_memory_size(256 << 20)
        .linear_memory_keep_resident(4 << 20)
        .table_keep_resident(4 << 20)
        .async_stack_keep_resident(128 << 10)
        .decommit_batch_size(64)
        .pagemap_scan(wasmtime::Enabled::Auto);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
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

        let engine = engine()?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        kv::add_to_linker(&mut linker)?;

        let cache_dir = manifest.dir.join(".spin").join("host-cache");
        let mut components = Vec::new();
        let mut index = HashMap::new();
        for (id, decl) in &manifest.components {
            let component = crate::cache::load_component(&engine, &decl.source, &cache_dir)?;
            let pre = ProxyPre::new(
                linker
                    .instantiate_pre(&component)
                    .map_err(anyhow::Error::from)
                    .with_context(|| {
                        format!("component {id:?} imports something this host lacks")
                    })?,
            )?;
            let hosts: Vec<String> = decl
                .allowed_outbound_hosts
                .iter()
                .map(|entry| variables.expand(entry))
                .collect::<Result<_>>()?;
            index.insert(id.clone(), components.len());
            components.push(LoadedComponent {
                id: id.clone(),
                pre,
                allowed_hosts: Arc::new(AllowedHosts::from_entries(&hosts)),
                allowed_stores: Arc::new(decl.key_value_stores.iter().cloned().collect()),
                variables: Arc::new(variables.for_component(id, &decl.variables)?),
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
            name: manifest.name,
            engine,
            routes,
            components,
            stores,
            client,
            clock: options.clock.clone(),
            metrics: Arc::default(),
            in_flight: InFlight::default(),
            variables,
        }))
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

        let mut store = Store::new(
            &self.engine,
            HostState {
                table: ResourceTable::new(),
                wasi: WasiCtx::builder()
                    .inherit_stdout()
                    .inherit_stderr()
                    .wall_clock(self.clock.wall_clock())
                    .build(),
                http: WasiHttpCtx::new(),
                hooks: OutboundHooks {
                    allowed: component.allowed_hosts.clone(),
                    client: self.client.clone(),
                    metrics: self.metrics.clone(),
                },
                stores: self.stores.clone(),
                allowed_stores: component.allowed_stores.clone(),
                variables: component.variables.clone(),
            },
        );
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let outparam = store.data_mut().http().new_response_outparam(sender)?;
        let pre = component.pre.clone();
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
