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

/// The repository's `spin.toml`, after checking the components were built.
pub fn manifest() -> PathBuf {
    let root = repo_root();
    let wasm = root.join("target/wasm32-wasip2/release/health.wasm");
    assert!(
        wasm.exists(),
        "components are not built: run `cargo build --target wasm32-wasip2 --release` (scripts/test.sh does)"
    );
    root.join("spin.toml")
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
