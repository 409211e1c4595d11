//! The outside world as the core sees it: key-value stores, outbound HTTP, time, randomness
//! and configuration variables. Spin components implement these over Spin's interfaces; tests
//! implement them in memory.

use std::time::Duration;

/// A failure reported by a key-value store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The component is not allowed to open this store label.
    #[error("access to the store was denied")]
    AccessDenied,
    /// The store label is not defined by the host.
    #[error("no such store")]
    NoSuchStore,
    /// Any other store failure (I/O, backend down, locked database).
    #[error("{0}")]
    Other(String),
    /// A stored value this service cannot read (not a failure of the store itself).
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

/// One labelled key-value store, with the operations Spin implements atomically.
///
/// Deliberately absent: compare-and-swap (not atomic on Spin's SQLite store, misreports on
/// Redis), batch reads (Spin's Redis backend sends `KEYS` instead of `MGET`) and key listing
/// (all at once, refused past 128 MiB, `KEYS *` on Redis): nothing here lists a label.
pub trait KeyValue {
    /// The value of `key`, or `None` when it is absent.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes one key.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Writes several keys at once (one transaction on SQLite, `MSET` on Redis).
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError>;
    /// Removes one key; absent keys are not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Removes several keys in one statement.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError>;
    /// Atomically adds `delta` to the counter at `key` (absent = 0) and returns the new value.
    /// A counter key must never be written with `set`.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
}

/// The method of an outbound request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpMethod {
    /// POST with a body (every call but a gateway's status query).
    #[default]
    Post,
    /// GET without a body (status queries of Midtrans, Xendit, Tripay).
    Get,
}

/// An outbound HTTP request (a POST with a body, or a GET).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    /// POST or GET.
    pub method: HttpMethod,
    /// Absolute URL.
    pub url: String,
    /// Request headers (names in lower case).
    pub headers: Vec<(String, String)>,
    /// The exact bytes sent (and signed); empty for a GET.
    pub body: Vec<u8>,
    /// Upper bound for connecting and for waiting for the first response byte.
    pub timeout: Duration,
}

/// What came back from an outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response body, truncated to [`MAX_UPSTREAM_BODY`] bytes.
    pub body: Vec<u8>,
}

/// Largest upstream response body the core reads.
pub const MAX_UPSTREAM_BODY: usize = 64 * 1024;

/// Why an outbound request produced no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The host refused the destination (not in `allowed_outbound_hosts`).
    #[error("destination not allowed by allowed_outbound_hosts")]
    Denied,
    /// Nothing listens at the destination.
    #[error("connection refused")]
    ConnectionRefused,
    /// No answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// Any other transport failure.
    #[error("{0}")]
    Other(String),
}

/// Outbound HTTP.
pub trait HttpClient {
    /// Sends all requests concurrently and returns their results in the same order.
    fn send_all(
        &self,
        requests: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, TransportError>>;

    /// Sends one request.
    fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, TransportError> {
        self.send_all(vec![request])
            .pop()
            .unwrap_or_else(|| Err(TransportError::Other("no response".into())))
    }
}

/// Milliseconds of a duration (the [`Clock`]'s unit), saturating.
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Wall-clock time and waiting.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Blocks for `duration` (used between quick inline retries).
    fn sleep(&self, duration: Duration);
}

/// Cryptographically secure random bytes.
pub trait Random {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// Why a configuration variable could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    /// The variable is not defined or not mapped into the component.
    #[error("not defined for this component")]
    Undefined,
    /// The provider failed.
    #[error("{0}")]
    Other(String),
}

/// Application variables (Spin's `variables` interface).
pub trait Variables {
    /// The value of variable `name`.
    fn get(&self, name: &str) -> Result<String, VariableError>;
}

/// Everything a route handler may use. The two stores are Spin labels `default` (records)
/// and `claims` (counters that decide races: payment, create and nonce claims, schedule
/// slots); the store module defines every key.
pub struct Platform<'a> {
    /// The `default` store: deposits, references, credit state.
    pub records: &'a dyn KeyValue,
    /// The `claims` store: counters that decide races.
    pub claims: &'a dyn KeyValue,
    /// Outbound HTTP to the payment gateway and the bot.
    pub http: &'a dyn HttpClient,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Randomness for generated deposit ids.
    pub random: &'a dyn Random,
    /// Configuration variables.
    pub variables: &'a dyn Variables,
}
