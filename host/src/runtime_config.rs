//! The runtime config file (`spin up --runtime-config-file`): key-value store definitions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Where one label's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreDefinition {
    /// Spin's SQLite store at this (resolved) path.
    Sqlite(PathBuf),
    /// A Redis server.
    Redis(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuntimeConfig {
    #[serde(default)]
    key_value_store: BTreeMap<String, RawStore>,
}

#[derive(Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
enum RawStore {
    #[serde(rename = "spin")]
    Spin { path: Option<PathBuf> },
    #[serde(rename = "redis")]
    Redis { url: String },
}

/// The store definitions of a runtime config file (empty map when no file is given).
pub fn load(path: Option<&Path>) -> Result<BTreeMap<String, StoreDefinition>> {
    let Some(path) = path else {
        return Ok(BTreeMap::new());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read runtime config {}", path.display()))?;
    let raw: RawRuntimeConfig = toml::from_str(&text)
        .with_context(|| format!("invalid runtime config {}", path.display()))?;
    // Relative SQLite paths resolve against the runtime config file's directory, as in Spin.
    let base = path.parent().unwrap_or(Path::new("."));
    raw.key_value_store
        .into_iter()
        .map(|(label, store)| {
            let definition = match store {
                RawStore::Spin { path: Some(p) } => StoreDefinition::Sqlite(base.join(p)),
                RawStore::Spin { path: None } => {
                    bail!(
                        "key_value_store.{label}: an in-memory store is not supported; give a path"
                    )
                }
                RawStore::Redis { url } => StoreDefinition::Redis(url),
            };
            Ok((label, definition))
        })
        .collect()
}
