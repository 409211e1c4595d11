//! `kv_labels`: which Spin key-value labels the store is on. Read by the Spin glue before it
//! opens the stores, and by `/health` to probe each label in use.

use super::parse::{read, ConfigError};
use crate::platform::Variables;

/// The variable naming the layout.
pub const KV_LABELS: &str = "kv_labels";

/// Where the records and the claims live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreLabels {
    /// Records in `default`, claims in `claims` (the default): two SQLite files or two Redis
    /// databases, each with its own lock.
    Two,
    /// Everything in `default`, for platforms that offer one label (Fermyon Wasm Functions).
    /// No key name is used in both labels, so the keys do not meet.
    Single,
}

impl StoreLabels {
    /// Reads `kv_labels`: `two` or `single`.
    pub fn load(vars: &dyn Variables) -> Result<Self, ConfigError> {
        let raw = read(vars, KV_LABELS)?;
        match raw.trim() {
            "two" => Ok(Self::Two),
            "single" => Ok(Self::Single),
            _ => Err(ConfigError::new(
                KV_LABELS,
                format!("`{raw}` is not `two` or `single`"),
            )),
        }
    }

    /// The label holding the claims (the counters that decide races).
    pub fn claims(self) -> &'static str {
        match self {
            Self::Two => "claims",
            Self::Single => "default",
        }
    }

    /// Every label in use, `default` first.
    pub fn in_use(self) -> &'static [&'static str] {
        match self {
            Self::Two => &["default", "claims"],
            Self::Single => &["default"],
        }
    }
}
