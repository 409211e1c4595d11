//! The app as child processes: `topup-host serve`, or `spin up` when asked.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::*;

/// A `topup-host serve` (or `spin up`) child process on a test app's stores; SIGKILLed on
/// drop.
pub struct Process {
    /// Its API.
    pub api: Api,
    /// Address it listens on.
    pub addr: SocketAddr,
    pub(crate) child: Child,
    /// `spin up` runs its trigger as a child: the whole process group is signalled.
    pub(crate) group: bool,
}

impl Process {
    /// SIGKILLs it (no chance to finish anything) and reaps it.
    pub fn kill(mut self) {
        self.reap();
    }

    fn reap(&mut self) {
        if self.group {
            self.signal("KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`) to it (to its process group under Spin).
    pub fn signal(&self, name: &str) {
        let target = if self.group {
            format!("-{}", self.child.id())
        } else {
            self.child.id().to_string()
        };
        let sent = Command::new("kill")
            .args([&format!("-{name}"), "--", &target])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} {target} failed");
    }

    /// Waits (polling, at most `limit`) for it to exit; its exit status, or None if it still
    /// runs.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---- The child-process runtime: `topup-host serve`, or `spin up` when asked ----

/// What runs the app in child-process mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    /// `topup-host serve` (the default, and what CI uses).
    Host,
    /// `<spin> up`: set `SPIN_BIN=/path/to/spin`, or `E2E_RUNTIME=spin` with `spin` on PATH.
    Spin(PathBuf),
}

impl Runtime {
    /// The runtime the environment asks for (read once per test process).
    pub fn from_env() -> Self {
        static CHOSEN: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
        CHOSEN
            .get_or_init(|| {
                if let Some(bin) = std::env::var_os("SPIN_BIN").filter(|b| !b.is_empty()) {
                    return Runtime::Spin(PathBuf::from(bin));
                }
                if std::env::var("E2E_RUNTIME").as_deref() == Ok("spin") {
                    let on_path = std::env::var_os("PATH").and_then(|path| {
                        std::env::split_paths(&path)
                            .map(|dir| dir.join("spin"))
                            .find(|candidate| candidate.is_file())
                    });
                    let spin = on_path.expect("E2E_RUNTIME=spin but no `spin` on PATH");
                    return Runtime::Spin(spin);
                }
                Runtime::Host
            })
            .clone()
    }

    /// The command serving `manifest` with `runtime_config` on `listen` (arguments only; the
    /// caller sets environment and output).
    pub fn command(&self, manifest: &Path, runtime_config: &Path, listen: &str) -> Command {
        match self {
            Runtime::Host => {
                let mut command = Command::new(env!("CARGO_BIN_EXE_topup-host"));
                command
                    .args(["serve", "--manifest"])
                    .arg(manifest)
                    .arg("--runtime-config-file")
                    .arg(runtime_config)
                    .args(["--listen", listen]);
                command
            }
            Runtime::Spin(bin) => {
                let mut command = Command::new(bin);
                command
                    .args(["up", "--listen", listen, "--runtime-config-file"])
                    .arg(runtime_config)
                    .arg("--from")
                    .arg(manifest);
                // Its own process group, so that the trigger child is signalled with it.
                std::os::unix::process::CommandExt::process_group(&mut command, 0);
                command
            }
        }
    }
}

/// How to start one child process beyond the defaults.
#[derive(Default)]
pub struct Launch {
    /// Use this runtime instead of [`Runtime::from_env`].
    pub runtime: Option<Runtime>,
    /// More `topup-host serve` flags (host only).
    pub args: Vec<String>,
    /// Write the process's stderr to this file instead of the test's.
    pub stderr: Option<PathBuf>,
}

// ---- end of the child-process runtime ----

impl Drop for Process {
    fn drop(&mut self) {
        self.reap();
    }
}

impl std::ops::Deref for Process {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}
