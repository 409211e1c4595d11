//! A private `redis-server` for one test or benchmark run.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::free_port;

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

    /// Sends `signal` (`KILL`, `STOP`, `CONT`) to the server: to crash or pause it.
    pub fn signal(&self, signal: &str) -> Result<()> {
        let number = match signal {
            "KILL" => libc::SIGKILL,
            "STOP" => libc::SIGSTOP,
            "CONT" => libc::SIGCONT,
            other => bail!("unsupported signal {other}"),
        };
        let pid = libc::pid_t::try_from(self.child.id()).context("pid")?;
        // SAFETY: kill(2) on our own child's pid; it touches no memory of ours.
        #[allow(unsafe_code, reason = "kill(2) has no safe wrapper in std; see SAFETY")]
        let failed = unsafe { libc::kill(pid, number) } != 0;
        if failed {
            bail!(
                "kill({pid}, SIG{signal}) failed: {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(())
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
