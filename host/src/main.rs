//! `topup-host serve`: run the app like `spin up`; `topup-host cloud-manifest`: write the
//! manifest Fermyon Cloud needs; `topup-host p3-manifest`: write spin.p3.toml (WASIp3 build).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use topup_host::{App, AppOptions};

const USAGE: &str = "usage:
  topup-host serve [--manifest spin.toml] [--runtime-config-file FILE] [--listen 127.0.0.1:3000]
                   [--sweep-every 60s] [--drain-timeout 30s] [--metrics 127.0.0.1:9464]
                   [--extra-ca FILE]... [--store-timeout 2s] [--stats-file FILE]
                   [--clock-offset-file FILE] [--max-instance-concurrent-reuse-count N]
                   [--idle-instance-timeout 1s]
  topup-host cloud-manifest [--manifest spin.toml] [--out spin.cloud.toml]
      (templated outbound hosts from SPIN_VARIABLE_<NAME>, as `spin up` resolves them)
  topup-host p3-manifest [--manifest spin.toml] [--out spin.p3.toml]
      (the WASIp3 build's manifest: spin.toml with the p3 build's sources and build commands)

  --extra-ca FILE       also trust the CA certificates in this PEM file for outbound HTTPS
                        (repeatable; the system's roots and the bundled Mozilla roots stay trusted)
  --store-timeout D     limit of one key-value call (default 2s): past it the request fails
                        with 503 STORE_UNAVAILABLE instead of waiting for the store
  --clock-offset-file F for tests: the components' clock runs F's milliseconds ahead
  --max-instance-concurrent-reuse-count N
                        requests one WASIp3 instance serves at once (default 16, as Spin 4)
  --idle-instance-timeout D
                        how long an idle WASIp3 instance is kept for reuse (default 1s, as Spin 4)
durations: 500ms, 60s, 1.5s, 5m or plain seconds";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("serve") => runtime.block_on(serve(&args[1..])),
        Some("cloud-manifest") => write_cloud_manifest(&args[1..]),
        Some("p3-manifest") => write_p3_manifest(&args[1..]),
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

/// Every value of a repeatable flag.
fn all_flags(args: &[String], name: &str) -> Result<Vec<String>> {
    let mut values = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        if arg == name {
            let value = args
                .get(i + 1)
                .with_context(|| format!("{name} needs a value\n{USAGE}"))?;
            values.push(value.clone());
        }
    }
    Ok(values)
}

async fn serve(args: &[String]) -> Result<()> {
    let manifest = flag(args, "--manifest")?.unwrap_or_else(|| "spin.toml".into());
    let runtime_config = flag(args, "--runtime-config-file")?.map(PathBuf::from);
    let listen = flag(args, "--listen")?.unwrap_or_else(|| "127.0.0.1:3000".into());
    let stats_file = flag(args, "--stats-file")?.map(PathBuf::from);
    // Operations: off unless given, so that plain `serve` behaves like `spin up`.
    let sweep_every = flag(args, "--sweep-every")?
        .map(|d| topup_host::duration::parse(&d))
        .transpose()?;
    let drain = flag(args, "--drain-timeout")?
        .map(|d| topup_host::duration::parse(&d))
        .transpose()?
        .unwrap_or(Duration::from_secs(30));
    let metrics = flag(args, "--metrics")?;

    let mut options = AppOptions::new(manifest, runtime_config);
    options.clock.offset_file = flag(args, "--clock-offset-file")?.map(PathBuf::from);
    options.tls.extra_ca = all_flags(args, "--extra-ca")?
        .into_iter()
        .map(PathBuf::from)
        .collect();
    options.instance_concurrency = flag(args, "--max-instance-concurrent-reuse-count")?
        .map(|n| n.parse::<usize>())
        .transpose()
        .context("--max-instance-concurrent-reuse-count")?;
    options.instance_idle_timeout = flag(args, "--idle-instance-timeout")?
        .map(|text| topup_host::duration::parse(&text).context("--idle-instance-timeout"))
        .transpose()?;
    options.store_timeout = flag(args, "--store-timeout")?
        .map(|text| topup_host::duration::parse(&text).context("--store-timeout"))
        .transpose()?;

    let app = App::load(&options).await?;
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

fn write_cloud_manifest(args: &[String]) -> Result<()> {
    let manifest = PathBuf::from(flag(args, "--manifest")?.unwrap_or_else(|| "spin.toml".into()));
    let out = PathBuf::from(flag(args, "--out")?.unwrap_or_else(|| "spin.cloud.toml".into()));
    let parsed = topup_host::manifest::Manifest::load(&manifest)?;
    let text = std::fs::read_to_string(&manifest)?;
    let cloud = topup_host::cloud_manifest::cloud_manifest(
        &text,
        topup_host::cloud_manifest::from_environment(&parsed),
    )?;
    std::fs::write(&out, cloud).with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

fn write_p3_manifest(args: &[String]) -> Result<()> {
    let manifest = PathBuf::from(flag(args, "--manifest")?.unwrap_or_else(|| "spin.toml".into()));
    let out = PathBuf::from(flag(args, "--out")?.unwrap_or_else(|| "spin.p3.toml".into()));
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let p3 = topup_host::p3_manifest::p3_manifest(&text)?;
    std::fs::write(&out, p3).with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Aborts a background task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
