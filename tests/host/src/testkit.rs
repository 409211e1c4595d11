//! Helpers shared by the end-to-end suite and the benchmark: a free loopback port, a private
//! `redis-server`, and a small HTTP client.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// A free loopback port (bound, released, then used by the caller).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A private `redis-server` on a free loopback port, stopped on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one (no persistence, data under `dir`) and waits until it answers.
    pub fn start(dir: &Path) -> Result<Self> {
        for _ in 0..5 {
            let port = free_port()?;
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(["--appendonly", "no", "--dir"])
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("redis-server must be installed (scripts/test.sh installs it)")?;
            let mut server = Self { child, port };
            for _ in 0..200 {
                if server.command(0, &["PING"]).is_ok() {
                    return Ok(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // the port was taken after all: try another
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        bail!("redis-server did not start")
    }

    /// URL of database `db`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Runs one command on database `db` and returns its text reply.
    pub fn command(&self, db: u8, args: &[&str]) -> Result<String> {
        let mut connection = redis::Client::open(self.url(db))?.get_connection()?;
        let mut command = redis::cmd(args.first().context("empty command")?);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        Ok(command.query(&mut connection)?)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response as a client sees it.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Reply {
    /// Body as JSON (`Null` when not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A small HTTP/1 client with pooled keep-alive connections.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    /// A client for `base` (e.g. `http://127.0.0.1:3000`).
    pub fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(256)
                .build(connector),
            base: base.to_string(),
        }
    }

    /// Sends a request; `Err` when no answer came.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Reply, String> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(body.into()))
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    /// Sends a request that must get an answer; panics otherwise (for tests).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        match self.try_send(method, path, headers, body).await {
            Ok(reply) => reply,
            Err(error) => panic!("{method} {path} failed: {error}"),
        }
    }
}
