//! Shared machinery of the end-to-end suite: the real components on the host, a private
//! SQLite directory or `redis-server` per test, the mock PG and bot, and an HTTP client.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

mod app;
mod clock;
mod process;
mod stores;

pub use app::*;
pub use clock::*;
pub use process::*;
pub use stores::*;

/// The shared secret every test starts with.
pub const SECRET: &str = "e2e-shared-secret-0123456789";

/// Which key-value backend the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Spin's SQLite store (two files in a temp dir).
    Sqlite,
    /// A private redis-server.
    Redis,
}

/// Generates one `#[tokio::test]` per backend for an `async fn scenario(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Sqlite).await
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario($crate::support::Backend::Redis).await
                }
            )*
        }
    };
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Which build of the components the suite runs: `E2E_BUILD=p3` selects the WASIp3 build
/// (spin.p3.toml, `target/wasm32-wasip2/release-p3`), anything else the default WASIp2 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// spin.toml: spin-sdk 5.2, `wasi:http/incoming-handler@0.2.0`, an instance per request.
    P2,
    /// spin.p3.toml: spin-sdk 7, `wasi:http/handler@0.3.0`, reused instances.
    P3,
}

impl Build {
    /// The build this run of the suite tests.
    pub fn current() -> Self {
        match std::env::var("E2E_BUILD").as_deref() {
            Ok("p3") => Self::P3,
            _ => Self::P2,
        }
    }

    /// Where its components are, relative to the repository (as its manifest names them).
    pub fn wasm_dir(self) -> &'static str {
        match self {
            Self::P2 => topup_host::p3_manifest::P2_DIR,
            Self::P3 => topup_host::p3_manifest::P3_DIR,
        }
    }

    fn manifest_name(self) -> &'static str {
        match (self, single_label()) {
            (Self::P2, false) => "spin.toml",
            (Self::P3, false) => "spin.p3.toml",
            (Self::P2, true) => "spin.single-label.toml",
            (Self::P3, true) => panic!("E2E_LABELS=single runs the WASIp2 build only"),
        }
    }
}

/// Whether this run of the suite keeps everything in the `default` label: `E2E_LABELS=single`
/// selects spin.single-label.toml (kv_labels `single`, no `claims` label anywhere).
pub fn single_label() -> bool {
    std::env::var("E2E_LABELS").as_deref() == Ok("single")
}

/// The labels the app's stores are on in this run, `default` first.
pub fn labels_in_use() -> &'static [&'static str] {
    if single_label() {
        &["default"]
    } else {
        &["default", "claims"]
    }
}

/// What `/health` answers under `store.labels` when every label in use is `ok`.
pub fn health_labels(ok: bool) -> Value {
    labels_in_use()
        .iter()
        .map(|label| (label.to_string(), serde_json::json!({ "ok": ok })))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The manifest of the build under test (spin.toml, spin.p3.toml with `E2E_BUILD=p3`, or
/// spin.single-label.toml with `E2E_LABELS=single`), after checking its components were built.
pub fn manifest() -> PathBuf {
    let root = repo_root();
    let build = Build::current();
    let wasm = root.join(build.wasm_dir()).join("health.wasm");
    assert!(
        wasm.exists(),
        "{build:?} components are not built: run `cargo build --target wasm32-wasip2 --release` \
         (and for E2E_BUILD=p3 `cargo build --target wasm32-wasip2 --profile release-p3 \
         --features topup-spin/p3`; scripts/test.sh does both)"
    );
    root.join(build.manifest_name())
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the target dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates it.
    pub fn new() -> Self {
        let path = repo_root().join("target/e2e-tmp").join(format!(
            "{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub use topup_testkit::{bearer, failed_body, paid_body, sign, Http, RedisServer, Reply};

/// A free loopback port.
pub fn free_port() -> u16 {
    topup_testkit::free_port().expect("free port")
}

/// Prints one row of the closing note's fault table.
pub fn report(scenario: &str, backend: Backend, expected: &str, observed: &str) {
    println!("FAULT-TABLE | {scenario} | {backend:?} | {expected} | {observed}");
}

/// The sum of one field over sweep answers.
pub fn total(answers: &[Value], field: &str) -> u64 {
    answers.iter().map(|a| a[field].as_u64().unwrap_or(0)).sum()
}
