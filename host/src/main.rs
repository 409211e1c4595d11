//! `topup-host serve`: run the app like `spin up`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use topup_host::{App, AppOptions};

const USAGE: &str = "usage:
  topup-host serve [--manifest spin.toml] [--runtime-config-file FILE] [--listen 127.0.0.1:3000]
                   [--sweep-every 60s] [--drain-timeout 30s] [--metrics 127.0.0.1:9464]
                   [--stats-file FILE]
durations: 500ms, 60s, 5m or plain seconds";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("serve") => runtime.block_on(serve(&args[1..])),
        _ => bail!("{USAGE}"),
    }
}

fn flag(args: &[String], name: &str) -> Result<Option<String>> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .cloned()
            .map(Some)
            .with_context(|| format!("{name} needs a value\n{USAGE}")),
    }
}

/// `500ms`, `60s`, `5m`, or plain seconds; more than zero.
fn duration(text: &str) -> Result<Duration> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .with_context(|| format!("bad duration {text:?}\n{USAGE}"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => bail!("bad duration {text:?}\n{USAGE}"),
    };
    if duration.is_zero() {
        bail!("duration {text:?} must be more than zero");
    }
    Ok(duration)
}

async fn serve(args: &[String]) -> Result<()> {
    let manifest = flag(args, "--manifest")?.unwrap_or_else(|| "spin.toml".into());
    let runtime_config = flag(args, "--runtime-config-file")?.map(PathBuf::from);
    let listen = flag(args, "--listen")?.unwrap_or_else(|| "127.0.0.1:3000".into());
    let stats_file = flag(args, "--stats-file")?.map(PathBuf::from);
    // Operations: off unless given, so that plain `serve` behaves like `spin up`.
    let sweep_every = flag(args, "--sweep-every")?
        .map(|d| duration(&d))
        .transpose()?;
    let drain = flag(args, "--drain-timeout")?
        .map(|d| duration(&d))
        .transpose()?
        .unwrap_or(Duration::from_secs(30));
    let metrics = flag(args, "--metrics")?;

    let app = App::load(&AppOptions::new(manifest, runtime_config)).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    println!("Serving http://{local}");

    let _metrics = match metrics {
        Some(addr) => {
            let (listener, local) = topup_host::metrics::bind(&addr).await?;
            println!("Metrics on http://{local}/metrics");
            Some(AbortOnDrop(tokio::spawn(topup_host::metrics::serve(
                app.clone(),
                listener,
            ))))
        }
        None => None,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sweeper = sweep_every.map(|every| {
        tokio::spawn(
            app.clone()
                .sweep_on_schedule(every, local.to_string(), stopped),
        )
    });

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let signalled = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        eprintln!(
            "Stopping: no new connections; letting requests in flight finish (at most {drain:?})"
        );
        // No sweep starts after this; one running is a request in flight.
        let _ = stop.send(true);
    };
    let outcome = app.clone().serve_until(listener, signalled, drain).await?;
    if let Some(sweeper) = sweeper {
        // A sweep running at the signal was drained above as a request in flight; what is
        // left is reading its answer.
        if tokio::time::timeout(Duration::from_secs(1), sweeper)
            .await
            .is_err()
        {
            eprintln!("Stopped: the scheduled sweep did not finish in time");
        }
    }
    if outcome.unfinished > 0 {
        eprintln!(
            "Stopped: {} request(s) still running after the drain timeout were cut off",
            outcome.unfinished
        );
    }
    if let Some(path) = stats_file {
        std::fs::write(&path, serde_json::to_vec_pretty(&app.store_stats())?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Aborts a background task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
