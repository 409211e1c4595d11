//! Compiled components cached on disk, so a restart does not recompile.

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Bump when the engine configuration changes in a way wasmtime cannot detect.
const CACHE_FORMAT: &str = "topup-host-cache-3";

/// The bytes of the component at `wasm`.
pub fn read(wasm: &Path) -> Result<Vec<u8>> {
    std::fs::read(wasm).with_context(|| {
        format!(
            "cannot read component {} (build it with `cargo build --target wasm32-wasip2 --release`)",
            wasm.display()
        )
    })
}

/// `bytes` compiled for `engine` (named `engine_tag`: the WASIp2 and WASIp3 engines differ),
/// from `cache_dir` when an artifact exists.
pub fn load_component(
    engine: &Engine,
    engine_tag: &str,
    bytes: &[u8],
    cache_dir: &Path,
) -> Result<Component> {
    let mut hasher = Sha256::new();
    hasher.update(CACHE_FORMAT);
    hasher.update(env!("CARGO_PKG_VERSION"));
    hasher.update(engine_tag);
    hasher.update(bytes);
    let artifact = cache_dir.join(format!("{}.cwasm", hex::encode(hasher.finalize())));
    if artifact.exists() {
        // SAFETY: the artifact was written by `Component::serialize` in this cache, keyed by
        // the source's hash; wasmtime still checks it matches this engine and version.
        #[allow(
            unsafe_code,
            reason = "the only unsafe call in the workspace; see SAFETY"
        )]
        let cached = unsafe { Component::deserialize_file(engine, &artifact) };
        if let Ok(component) = cached {
            return Ok(component);
        }
    }
    let component = Component::from_binary(engine, bytes).map_err(anyhow::Error::from)?;
    if std::fs::create_dir_all(cache_dir).is_ok() {
        if let Ok(serialized) = component.serialize() {
            let temporary = artifact.with_extension(format!("tmp{}", std::process::id()));
            if std::fs::write(&temporary, serialized).is_ok() {
                let _ = std::fs::rename(&temporary, &artifact);
            }
        }
    }
    Ok(component)
}
