//! `topup-host serve`: run the app like `spin up`; `topup-host cloud-manifest`: write the
//! manifest Fermyon Cloud needs.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use topup_host::{App, AppOptions};

const USAGE: &str = "usage:
  topup-host serve [--manifest spin.toml] [--runtime-config-file FILE] [--listen 127.0.0.1:3000] [--stats-file FILE]
      [--clock-offset-file FILE]   (tests: the components' clock runs FILE's milliseconds ahead)
  topup-host cloud-manifest [--manifest spin.toml] [--out spin.cloud.toml]
      (templated outbound hosts from SPIN_VARIABLE_<NAME>, as `spin up` resolves them)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.first().map(String::as_str) {
        Some("serve") => runtime.block_on(serve(&args[1..])),
        Some("cloud-manifest") => write_cloud_manifest(&args[1..]),
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

async fn serve(args: &[String]) -> Result<()> {
    let manifest = flag(args, "--manifest")?.unwrap_or_else(|| "spin.toml".into());
    let runtime_config = flag(args, "--runtime-config-file")?.map(PathBuf::from);
    let listen = flag(args, "--listen")?.unwrap_or_else(|| "127.0.0.1:3000".into());
    let stats_file = flag(args, "--stats-file")?.map(PathBuf::from);

    let mut options = AppOptions::new(manifest, runtime_config);
    options.clock.offset_file = flag(args, "--clock-offset-file")?.map(PathBuf::from);
    let app = App::load(&options).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!("Serving http://{}", listener.local_addr()?);

    let server = tokio::spawn(app.clone().serve(listener));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = server => result??,
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
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
