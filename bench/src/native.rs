//! The native baseline: the same core routes served by hyper without WebAssembly, over the same
//! store backends the host uses, so `wasm / native` isolates the cost of the wasm layer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::server::conn::http1;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::runtime::Handle;
use topup_core::http::{Request, Response, MAX_BODY_BYTES};
use topup_core::platform::{
    Clock, HttpClient, KeyValue, OutboundRequest, OutboundResponse, Platform, Random, StoreError,
    TransportError, VariableError, Variables, MAX_UPSTREAM_BODY,
};
use topup_host::kv::{Backend, Failure};

struct NativeStore {
    backend: Arc<dyn Backend>,
    runtime: Handle,
}

fn store_error(failure: Failure) -> StoreError {
    match failure {
        Failure::Store(message) | Failure::Trap(message) => StoreError::Other(message),
    }
}

impl KeyValue for NativeStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.runtime
            .block_on(self.backend.get(key))
            .map_err(store_error)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.backend.set(key, value))
            .map_err(store_error)
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.backend.set_many(entries.to_vec()))
            .map_err(store_error)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.backend.delete(key))
            .map_err(store_error)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.runtime
            .block_on(self.backend.delete_many(keys.to_vec()))
            .map_err(store_error)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.runtime
            .block_on(self.backend.increment(key, delta))
            .map_err(store_error)
    }
}

struct NativeHttp {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: Handle,
}

impl HttpClient for NativeHttp {
    fn send_all(
        &self,
        requests: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, TransportError>> {
        let sends = requests.into_iter().map(|request| {
            let client = self.client.clone();
            async move {
                let mut builder = http::Request::builder().method("POST").uri(&request.url);
                for (name, value) in &request.headers {
                    builder = builder.header(name, value);
                }
                let outgoing = builder
                    .body(Full::new(Bytes::from(request.body)))
                    .map_err(|e| TransportError::Other(e.to_string()))?;
                let response = tokio::time::timeout(request.timeout, client.request(outgoing))
                    .await
                    .map_err(|_| TransportError::Timeout)?
                    .map_err(|_| TransportError::ConnectionRefused)?;
                let status = response.status().as_u16();
                let body = Limited::new(response.into_body(), MAX_UPSTREAM_BODY)
                    .collect()
                    .await
                    .map(|b| b.to_bytes().to_vec())
                    .unwrap_or_default();
                Ok(OutboundResponse { status, body })
            }
        });
        self.runtime.block_on(futures::future::join_all(sends))
    }
}

struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

struct UrandomRandom;

impl Random for UrandomRandom {
    fn fill(&self, buf: &mut [u8]) {
        if let Ok(mut file) = std::fs::File::open("/dev/urandom") {
            let _ = file.read_exact(buf);
        }
    }
}

struct EnvVariables(HashMap<String, String>);

impl Variables for EnvVariables {
    fn get(&self, name: &str) -> Result<String, VariableError> {
        self.0.get(name).cloned().ok_or(VariableError::Undefined)
    }
}

struct Native {
    records: NativeStore,
    claims: NativeStore,
    http: NativeHttp,
    variables: EnvVariables,
}

type Route = fn(&Request, &Platform) -> Response;

fn route(path: &str) -> Option<Route> {
    use topup_core::routes::*;
    Some(match path {
        "/health" => health::handle,
        "/deposit/create" => create::handle,
        "/internal/payment-callback" => callback::handle,
        "/deposit/status" => status::handle,
        "/internal/credit-retry" => sweep::handle,
        "/deposit/retry-credit" => manual_retry::handle,
        _ => return None,
    })
}

/// The bench's own argument that makes it the native server:
/// `serve-native LISTEN MANIFEST RECORDS_DB CLAIMS_DB`; variables resolve as the host resolves
/// them (`SPIN_VARIABLE_*`, else the manifest's defaults).
pub const SUBCOMMAND: &str = "serve-native";

/// Runs the native server until killed.
pub fn serve_process(
    listen: &str,
    manifest: &std::path::Path,
    records: &std::path::Path,
    claims: &std::path::Path,
) -> anyhow::Result<()> {
    let manifest = topup_host::manifest::Manifest::load(manifest)?;
    let resolved =
        topup_host::variables::AppVariables::resolve(&manifest, &std::env::vars().collect())?;
    let variables = topup_core::config::VARIABLES
        .iter()
        .filter_map(|(name, _)| Some((name.to_string(), resolved.get(name)?)))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let records = topup_host::kv::open_sqlite(records, "default")?;
        let claims = topup_host::kv::open_sqlite(claims, "claims")?;
        start(listen, records, claims, variables).await?;
        std::future::pending::<anyhow::Result<()>>().await
    })
}

/// Starts the native server on `listen`; `variables` are the Spin variable values.
async fn start(
    listen: &str,
    records: Arc<dyn Backend>,
    claims: Arc<dyn Backend>,
    variables: HashMap<String, String>,
) -> anyhow::Result<()> {
    let runtime = Handle::current();
    let native = Arc::new(Native {
        records: NativeStore {
            backend: records,
            runtime: runtime.clone(),
        },
        claims: NativeStore {
            backend: claims,
            runtime: runtime.clone(),
        },
        http: NativeHttp {
            client: Client::builder(TokioExecutor::new()).build_http(),
            runtime,
        },
        variables: EnvVariables(variables),
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let native = native.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let native = native.clone();
                        async move { Ok::<_, Infallible>(serve(native, request).await) }
                    },
                );
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

async fn serve(
    native: Arc<Native>,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Some(handler) = route(parts.uri.path()) else {
        return hyper::Response::builder()
            .status(404)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
    };
    let mut core = Request::new(
        parts.method.as_str(),
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str()),
    );
    core.headers = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.to_str().ok().map(str::to_string)))
        .collect();
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => core.body = collected.to_bytes().to_vec(),
        Err(_) => core.body_exceeded_limit = true,
    }
    let response = tokio::task::spawn_blocking(move || {
        let platform = Platform {
            records: &native.records,
            claims: &native.claims,
            http: &native.http,
            clock: &SystemClock,
            random: &UrandomRandom,
            variables: &native.variables,
        };
        handler(&core, &platform)
    })
    .await
    .unwrap_or_else(|_| Response::empty(500));
    let mut builder = hyper::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_default()
}
