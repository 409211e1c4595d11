//! In-memory stand-ins for the platform, for native tests (feature `testing`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::config::{Config, VARIABLES};
use crate::credit::{Credit, PaymentFacts};
use crate::deposit::{Creation, Deposit, Invoice};
use crate::ids::{DepositId, Reference};
use crate::platform::{
    Clock, HttpClient, KeyValue, OutboundRequest, OutboundResponse, Platform, Random, StoreError,
    TransportError, VariableError, Variables,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A key-value store in memory. Counters are 8-byte little-endian integers, as in Spin's
/// SQLite store, and `increment` refuses any other value.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<BTreeMap<String, Vec<u8>>>,
    writes: AtomicUsize,
    fail: FailureSwitch,
}

/// Makes a [`MemoryStore`] fail from anywhere (a crash stand-in); clones share the switch.
#[derive(Clone, Default)]
pub struct FailureSwitch(Arc<Mutex<Option<String>>>);

impl FailureSwitch {
    /// Every later store operation fails with `message`.
    pub fn fail(&self, message: &str) {
        *lock(&self.0) = Some(message.to_string());
    }

    /// Operations succeed again.
    pub fn heal(&self) {
        *lock(&self.0) = None;
    }
}

impl MemoryStore {
    /// Write operations so far (set, set_many, delete, delete_many, increment).
    pub fn write_ops(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    /// All keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.data).keys().cloned().collect()
    }

    /// A copy of all entries.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.data).clone()
    }

    /// The switch that makes this store fail.
    pub fn failure_switch(&self) -> FailureSwitch {
        self.fail.clone()
    }

    fn check(&self) -> Result<(), StoreError> {
        match &*lock(&self.fail.0) {
            Some(message) => Err(StoreError::Other(message.clone())),
            None => Ok(()),
        }
    }

    fn wrote(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}

impl KeyValue for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        Ok(lock(&self.data).get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.check()?;
        self.wrote();
        lock(&self.data).insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.check()?;
        self.wrote();
        let mut data = lock(&self.data);
        for (key, value) in entries {
            data.insert(key.clone(), value.clone());
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check()?;
        self.wrote();
        lock(&self.data).remove(key);
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.check()?;
        self.wrote();
        let mut data = lock(&self.data);
        for key in keys {
            data.remove(key);
        }
        Ok(())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.check()?;
        self.wrote();
        let mut data = lock(&self.data);
        let current = match data.get(key) {
            None => 0,
            Some(bytes) => i64::from_le_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Other(format!("{key} is not a counter")))?,
            ),
        };
        let next = current + delta;
        data.insert(key.to_string(), next.to_le_bytes().to_vec());
        Ok(next)
    }
}

/// A clock that moves only when told to (or when [`ScriptedHttp`] simulates latency).
#[derive(Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self(Arc::new(AtomicU64::new(now_ms)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

type Responder = Box<dyn Fn(&OutboundRequest) -> Result<OutboundResponse, TransportError> + Send>;

/// Outbound HTTP answered from a script; records every request.
pub struct ScriptedHttp {
    queue: Mutex<VecDeque<Result<OutboundResponse, TransportError>>>,
    fallback: Mutex<Option<Responder>>,
    requests: Mutex<Vec<OutboundRequest>>,
    latency_ms: u64,
    clock: Mutex<Option<ManualClock>>,
}

impl ScriptedHttp {
    /// Answers with `responses` in order; fails once they run out.
    pub fn new(responses: Vec<Result<OutboundResponse, TransportError>>) -> Self {
        Self {
            queue: Mutex::new(responses.into()),
            fallback: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
            latency_ms: 0,
            clock: Mutex::new(None),
        }
    }

    /// Answers every request with `response`.
    pub fn always(response: Result<OutboundResponse, TransportError>) -> Self {
        Self::with_handler(move |_| response.clone())
    }

    /// Answers every request with `handler(request)`.
    pub fn with_handler(
        handler: impl Fn(&OutboundRequest) -> Result<OutboundResponse, TransportError> + Send + 'static,
    ) -> Self {
        let http = Self::new(Vec::new());
        *lock(&http.fallback) = Some(Box::new(handler));
        http
    }

    /// Replaces the fallback handler.
    pub fn set_handler(
        &self,
        handler: impl Fn(&OutboundRequest) -> Result<OutboundResponse, TransportError> + Send + 'static,
    ) {
        *lock(&self.fallback) = Some(Box::new(handler));
    }

    /// Each request takes this long on the attached clock (capped by its timeout).
    pub fn with_latency_ms(mut self, latency_ms: u64) -> Self {
        self.latency_ms = latency_ms;
        self
    }

    /// The clock that simulated latency advances.
    pub fn attach_clock(&self, clock: &ManualClock) {
        *lock(&self.clock) = Some(clock.clone());
    }

    /// Every request sent so far.
    pub fn requests(&self) -> Vec<OutboundRequest> {
        lock(&self.requests).clone()
    }

    /// Requests sent to URLs containing `part`.
    pub fn requests_to(&self, part: &str) -> Vec<OutboundRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.url.contains(part))
            .collect()
    }
}

impl HttpClient for ScriptedHttp {
    fn send_all(
        &self,
        requests: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, TransportError>> {
        let longest = requests.iter().map(|r| r.timeout).max().unwrap_or_default();
        if let Some(clock) = &*lock(&self.clock) {
            clock.advance(Duration::from_millis(self.latency_ms).min(longest));
        }
        requests
            .into_iter()
            .map(|request| {
                lock(&self.requests).push(request.clone());
                let scripted = lock(&self.queue).pop_front();
                scripted.unwrap_or_else(|| match &*lock(&self.fallback) {
                    Some(handler) => handler(&request),
                    None => Err(TransportError::Other("script exhausted".into())),
                })
            })
            .collect()
    }
}

/// Randomness that always yields the same byte.
pub struct FixedRandom(pub u8);

impl Random for FixedRandom {
    fn fill(&self, buf: &mut [u8]) {
        buf.fill(self.0);
    }
}

/// Randomness that yields a new counter value on every call (unique ids in tests).
#[derive(Default)]
pub struct CountingRandom(AtomicU64);

impl Random for CountingRandom {
    fn fill(&self, buf: &mut [u8]) {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte = n.to_be_bytes().get(i % 8).copied().unwrap_or(0);
        }
    }
}

/// Variables from a map, with the manifest defaults of [`VARIABLES`] filled in as Spin would.
#[derive(Clone, Default)]
pub struct MapVariables(HashMap<String, String>);

impl MapVariables {
    /// Defaults plus `pairs`.
    pub fn new(pairs: &[(&str, &str)]) -> Self {
        let mut map: HashMap<String, String> = VARIABLES
            .iter()
            .filter_map(|(name, default)| default.map(|d| (name.to_string(), d.to_string())))
            .collect();
        for (name, value) in pairs {
            map.insert(name.to_string(), value.to_string());
        }
        Self(map)
    }

    /// Sets one variable (builder style).
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.0.insert(name.to_string(), value.to_string());
        self
    }
}

impl Variables for MapVariables {
    fn get(&self, name: &str) -> Result<String, VariableError> {
        self.0.get(name).cloned().ok_or(VariableError::Undefined)
    }
}

/// The variables of [`test_config`].
pub fn test_variables() -> MapVariables {
    MapVariables::new(&[
        ("shared_secret", "test-secret"),
        ("central_pg_base_url", "http://pg.test"),
        ("bot_backend_url", "http://bot.test"),
    ])
}

/// A valid configuration pointing at `http://pg.test` and `http://bot.test`.
pub fn test_config() -> Config {
    match Config::load_all(&test_variables()) {
        Ok(config) => config,
        Err(error) => panic!("test configuration is invalid: {error}"),
    }
}

fn id(id: &str) -> DepositId {
    DepositId::parse(id).unwrap_or_else(|| panic!("test id {id:?} is not a valid deposit id"))
}

fn reference(id: &str) -> Reference {
    Reference::parse(&format!("REF-{id}")).unwrap_or_else(|| panic!("bad test reference for {id}"))
}

/// An open deposit of `user-1` with reference `REF-{id}`, epoch 1.
pub fn sample_deposit(deposit_id: &str, amount: u64) -> Deposit {
    Deposit {
        deposit_id: id(deposit_id),
        epoch: 1,
        user_id: "user-1".into(),
        amount,
        product_details: "Top up".into(),
        email: None,
        msisdn: None,
        created_at: 0,
        gateway: crate::ids::GatewayName::Central,
        bot: crate::ids::BotId::default(),
        creation: Creation::Open {
            token: 0,
            reference: reference(deposit_id),
            payment_url: format!("https://pay.test/{deposit_id}"),
        },
    }
}

/// The invoice of [`sample_deposit`].
pub fn sample_invoice(deposit_id: &str, amount: u64) -> Invoice {
    Invoice {
        deposit_id: id(deposit_id),
        epoch: 1,
        user_id: "user-1".into(),
        amount,
        reference: reference(deposit_id),
        payment_url: Some(format!("https://pay.test/{deposit_id}")),
        attempt: 0,
        bot: crate::ids::BotId::default(),
    }
}

/// A payment of `sample_invoice("DEP1", 50_000)` recorded at `paid_at`, not yet delivered.
pub fn sample_credit(paid_at: u64) -> Credit {
    Credit::new(
        &sample_invoice("DEP1", 50_000),
        PaymentFacts {
            paid_at,
            payment_method: Some("VC".into()),
            result_code: Some("00".into()),
        },
        0,
        Duration::from_secs(30),
    )
}

/// Owns one of every stand-in; [`TestPlatform::platform`] lends them to a handler.
pub struct TestPlatform {
    /// The `default` store.
    pub records: MemoryStore,
    /// The `claims` store.
    pub claims: MemoryStore,
    /// Outbound HTTP.
    pub http: ScriptedHttp,
    /// The clock (starts at 1,700,000,000,000 ms).
    pub clock: ManualClock,
    /// Randomness.
    pub random: CountingRandom,
    /// Variables.
    pub variables: MapVariables,
}

impl Default for TestPlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPlatform {
    /// Empty stores, [`test_variables`], HTTP that fails until scripted.
    pub fn new() -> Self {
        let clock = ManualClock::new(1_700_000_000_000);
        let http = ScriptedHttp::new(Vec::new());
        http.attach_clock(&clock);
        Self {
            records: MemoryStore::default(),
            claims: MemoryStore::default(),
            http,
            clock,
            random: CountingRandom::default(),
            variables: test_variables(),
        }
    }

    /// The platform view handlers take.
    pub fn platform(&self) -> Platform<'_> {
        Platform {
            records: &self.records,
            claims: &self.claims,
            http: &self.http,
            clock: &self.clock,
            random: &self.random,
            variables: &self.variables,
        }
    }
}
