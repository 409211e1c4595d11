//! `topup-host serve`: run the app like `spin up`; `topup-host cloud-manifest`: write the
//! manifest Fermyon Cloud needs; `topup-host p3-manifest`: write spin.p3.toml (the WASIp3
//! build's manifest); `topup-host single-label-manifest`: write spin.single-label.toml (one
//! key-value label). `topup-host --help` (and `<command> --help`) lists the flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use topup_host::{App, AppOptions};

/// Runs the app's Spin components on wasmtime, with Spin's interfaces and behaviour.
#[derive(Parser)]
#[command(name = "topup-host", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the app like `spin up` (variables from SPIN_VARIABLE_<NAME>).
    Serve(Serve),
    /// Write the manifest Fermyon Cloud needs: spin.toml with literal outbound hosts
    /// (templated hosts resolved from SPIN_VARIABLE_<NAME>, as `spin up` resolves them).
    CloudManifest(CloudManifest),
    /// Write spin.p3.toml, the WASIp3 build's manifest: spin.toml with the p3 build's
    /// component sources and build commands.
    P3Manifest(P3Manifest),
    /// Write spin.single-label.toml, for platforms with only the `default` key-value label:
    /// spin.toml without the `claims` label and with kv_labels defaulting to `single`.
    SingleLabelManifest(SingleLabelManifest),
}

#[derive(Args)]
#[command(after_help = "Durations: 500ms, 60s, 1.5s, 5m or plain seconds. \
    Variables come from SPIN_VARIABLE_<NAME>, as for `spin up`.")]
struct Serve {
    /// The app; component paths are relative to its directory.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "spin.toml",
        env = "TOPUP_MANIFEST"
    )]
    manifest: PathBuf,
    /// Key-value stores, as for `spin up` (without it: SQLite under .spin/).
    #[arg(long, value_name = "FILE", env = "TOPUP_RUNTIME_CONFIG_FILE")]
    runtime_config_file: Option<PathBuf>,
    /// The app's HTTP address.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:3000",
        env = "TOPUP_LISTEN"
    )]
    listen: String,
    /// Run the credit sweep on this interval (off without it, like `spin up`).
    #[arg(long, value_name = "DURATION", value_parser = duration, env = "TOPUP_SWEEP_EVERY")]
    sweep_every: Option<Duration>,
    /// On SIGTERM/SIGINT, how long requests in flight may still run.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration,
          env = "TOPUP_DRAIN_TIMEOUT")]
    drain_timeout: Duration,
    /// Serve GET /metrics (Prometheus text format) on this separate address.
    #[arg(long, value_name = "ADDR", env = "TOPUP_METRICS")]
    metrics: Option<String>,
    /// Also trust the CA certificates in this PEM file for outbound HTTPS (repeatable; the
    /// system's roots and the bundled Mozilla roots stay trusted).
    #[arg(long, value_name = "FILE")]
    extra_ca: Vec<PathBuf>,
    /// Limit of one key-value call: past it the request fails with 503 STORE_UNAVAILABLE
    /// instead of waiting for the store.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = duration,
          env = "TOPUP_STORE_TIMEOUT")]
    store_timeout: Duration,
    /// Write store operation counts to this file on exit (for the benchmark).
    #[arg(long, value_name = "FILE")]
    stats_file: Option<PathBuf>,
    /// Tests only: the components' clock runs this file's milliseconds ahead.
    #[arg(long, value_name = "FILE")]
    clock_offset_file: Option<PathBuf>,
    /// Requests one WASIp3 instance serves at once (Spin 4's flag and default).
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_instance_concurrent_reuse_count: usize,
    /// How long an idle WASIp3 instance is kept for reuse (Spin 4's flag and default).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration)]
    idle_instance_timeout: Duration,
}

#[derive(Args)]
struct P3Manifest {
    /// The manifest to translate.
    #[arg(long, value_name = "FILE", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Where to write the WASIp3 build's manifest.
    #[arg(long, value_name = "FILE", default_value = "spin.p3.toml")]
    out: PathBuf,
}

#[derive(Args)]
struct SingleLabelManifest {
    /// The manifest to translate.
    #[arg(long, value_name = "FILE", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Where to write the single-label manifest.
    #[arg(long, value_name = "FILE", default_value = "spin.single-label.toml")]
    out: PathBuf,
}

#[derive(Args)]
struct CloudManifest {
    /// The manifest to translate.
    #[arg(long, value_name = "FILE", default_value = "spin.toml")]
    manifest: PathBuf,
    /// Where to write the Fermyon Cloud manifest.
    #[arg(long, value_name = "FILE", default_value = "spin.cloud.toml")]
    out: PathBuf,
}

/// A duration flag's value.
fn duration(text: &str) -> Result<Duration> {
    topup_host::duration::parse(text)
}

fn main() -> ExitCode {
    let cli: Cli = topup_host::cli::parse();
    let result = match cli.command {
        Command::Serve(serve_args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")
            .and_then(|runtime| runtime.block_on(serve(serve_args))),
        Command::CloudManifest(cloud) => write_cloud_manifest(&cloud),
        Command::P3Manifest(p3) => {
            write_translated(&p3.manifest, &p3.out, topup_host::p3_manifest::p3_manifest)
        }
        Command::SingleLabelManifest(single) => write_translated(
            &single.manifest,
            &single.out,
            topup_host::single_label_manifest::single_label_manifest,
        ),
    };
    topup_host::cli::exit_code("topup-host", result)
}

async fn serve(args: Serve) -> Result<()> {
    let Serve {
        manifest,
        runtime_config_file,
        listen,
        sweep_every,
        drain_timeout: drain,
        metrics,
        extra_ca,
        store_timeout,
        stats_file,
        clock_offset_file,
        max_instance_concurrent_reuse_count,
        idle_instance_timeout,
    } = args;
    let mut options = AppOptions::new(manifest, runtime_config_file);
    options.clock.offset_file = clock_offset_file;
    options.tls.extra_ca = extra_ca;
    options.store_timeout = Some(store_timeout);
    options.instance_concurrency = Some(max_instance_concurrent_reuse_count);
    options.instance_idle_timeout = Some(idle_instance_timeout);

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

fn write_cloud_manifest(args: &CloudManifest) -> Result<()> {
    let CloudManifest { manifest, out } = args;
    let parsed = topup_host::manifest::Manifest::load(manifest)?;
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let cloud = topup_host::cloud_manifest::cloud_manifest(
        &text,
        topup_host::cloud_manifest::from_environment(&parsed),
    )?;
    std::fs::write(out, cloud).with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

/// Writes `out`: the manifest `manifest` made into another by `translate`.
fn write_translated(
    manifest: &std::path::Path,
    out: &std::path::Path,
    translate: fn(&str) -> Result<String>,
) -> Result<()> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    std::fs::write(out, translate(&text)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
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
