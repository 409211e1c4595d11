//! Helpers shared by the core's route-level test files: requests as the bot, the gateway and
//! an operator send them, scripted upstreams, and stores that let another request (or a
//! fault) strike at an exact operation.

#![allow(dead_code, unused_imports)]

use std::cell::{Cell, RefCell};

pub use std::sync::Arc;
pub use std::time::Duration;

pub use serde_json::{json, Value};
pub use topup_core::config::Secret;
pub use topup_core::http::{Request, Response};
pub use topup_core::platform::{
    HttpClient, KeyValue, OutboundRequest, OutboundResponse, Platform, StoreError, TransportError,
};
pub use topup_core::routes;
pub use topup_core::signature::{sign, verify_signature};
pub use topup_core::testing::TestPlatform;

/// What a store holds.
pub type Snapshot = std::collections::BTreeMap<String, Vec<u8>>;

/// Both stores' contents.
pub fn store_snapshot(p: &TestPlatform) -> (Snapshot, Snapshot) {
    (p.records.snapshot(), p.claims.snapshot())
}

/// The shared secret of [`topup_core::testing::test_config`].
pub const SECRET: &str = "test-secret";

/// A 200 JSON answer.
pub fn ok_json(body: Value) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status: 200,
        body: body.to_string().into_bytes(),
    })
}

/// PG answers with a reference derived from the order id; the bot accepts.
pub fn happy_upstreams(request: &OutboundRequest) -> Result<OutboundResponse, TransportError> {
    if request.url.starts_with("http://pg.test") {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let order = body["orderId"].as_str().unwrap_or_default();
        ok_json(
            json!({"reference": format!("REF-{order}"), "paymentUrl": format!("https://pay.test/{order}")}),
        )
    } else {
        ok_json(json!({"ok": true}))
    }
}

/// A platform whose upstreams answer [`happy_upstreams`].
pub fn platform() -> TestPlatform {
    let p = TestPlatform::new();
    p.http.set_handler(happy_upstreams);
    p
}

/// A request with the bearer token.
pub fn authed(method: &str, path: &str) -> Request {
    Request::new(method, path).with_header("authorization", &format!("Bearer {SECRET}"))
}

/// `POST /deposit/create` with `body`.
pub fn create_request(body: Value) -> Request {
    authed("POST", "/deposit/create")
        .with_header("content-type", "application/json")
        .with_body(body.to_string())
}

/// Creates a deposit.
pub fn create(p: &TestPlatform, body: Value) -> Response {
    routes::create::handle(&create_request(body), &p.platform())
}

/// A callback signed as the PG signs it.
pub fn signed_callback(body: &str) -> Request {
    authed("POST", "/internal/payment-callback")
        .with_header("content-type", "application/json")
        .with_header("x-signature", &sign(&Secret::new(SECRET), body.as_bytes()))
        .with_body(body)
}

/// A PAID body for deposit `id` with reference `REF-{id}`.
pub fn paid_body(id: &str, amount: u64) -> String {
    json!({"orderId": id, "reference": format!("REF-{id}"), "status": "PAID", "resultCode": "00",
           "duitkuData": {"merchantOrderId": id, "amount": amount.to_string(), "paymentMethod": "VC"}})
    .to_string()
}

/// A FAILED body for deposit `id`.
pub fn failed_body(id: &str) -> String {
    json!({"orderId": id, "reference": format!("REF-{id}"), "status": "FAILED", "resultCode": "02"})
        .to_string()
}

/// Sends a signed callback.
pub fn callback(p: &TestPlatform, body: &str) -> Response {
    routes::callback::handle(&signed_callback(body), &p.platform())
}

/// `GET /deposit/status?{query}`.
pub fn status(p: &TestPlatform, query: &str) -> Response {
    routes::status::handle(
        &authed("GET", &format!("/deposit/status?{query}")),
        &p.platform(),
    )
}

/// The status view of deposit `id` (asserts 200).
pub fn view(p: &TestPlatform, id: &str) -> Value {
    view_by(p, &format!("depositId={id}"))
}

/// The status view for `query` (asserts 200).
pub fn view_by(p: &TestPlatform, query: &str) -> Value {
    let response = status(p, query);
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

/// Runs one sweep on `platform`.
pub fn sweep_on(platform: &Platform) -> Response {
    routes::sweep::handle(&authed("POST", "/internal/credit-retry"), platform)
}

/// Runs one sweep (asserts 200).
pub fn sweep(p: &TestPlatform) -> Value {
    let response = sweep_on(&p.platform());
    assert_eq!(response.status, 200, "{}", response.json_body());
    response.json_body()
}

/// An operator's manual retry.
pub fn manual_retry(p: &TestPlatform, id: &str) -> Response {
    routes::manual_retry::handle(
        &authed("POST", &format!("/deposit/retry-credit?depositId={id}")),
        &p.platform(),
    )
}

/// Credit calls sent to the bot.
pub fn bot_requests(p: &TestPlatform) -> Vec<OutboundRequest> {
    p.http.requests_to("bot.test")
}

/// Credit calls sent to the bot for deposit `id`.
pub fn credits_sent(p: &TestPlatform, id: &str) -> Vec<Value> {
    bot_requests(p)
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|body| body["depositId"] == id)
        .collect()
}

/// Creates deposit `id` for user `u1`.
pub fn new_deposit(p: &TestPlatform, id: &str, amount: u64) {
    let response = create(
        p,
        json!({"userId": "u1", "amount": amount, "depositId": id}),
    );
    assert_eq!(response.status, 200, "{}", response.json_body());
}

/// The bot answers every credit with `status`; the PG stays happy.
pub fn set_bot(p: &TestPlatform, status: u16) {
    p.http.set_handler(move |request| {
        if request.url.starts_with("http://bot.test") {
            Ok(OutboundResponse {
                status,
                body: b"{}".to_vec(),
            })
        } else {
            happy_upstreams(request)
        }
    });
}

/// A store that runs `hook` once, just before the first operation matching `trigger`
/// (operation name, key prefix): a deterministic stand-in for another instance acting at that
/// exact moment.
pub struct Interleaved<'a> {
    /// The store underneath.
    pub inner: &'a dyn KeyValue,
    /// (operation, key prefix) that fires the hook.
    pub trigger: (&'static str, &'static str),
    /// Matching operations to let pass before firing.
    pub skip: Cell<u32>,
    /// Runs once.
    pub hook: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
}

impl<'a> Interleaved<'a> {
    /// Runs `hook` before the first `op` on a key starting with `prefix`.
    pub fn new(
        inner: &'a dyn KeyValue,
        trigger: (&'static str, &'static str),
        hook: impl FnOnce() + 'a,
    ) -> Self {
        Self {
            inner,
            trigger,
            skip: Cell::new(0),
            hook: RefCell::new(Some(Box::new(hook))),
        }
    }

    /// Fires at the `n`-th matching operation instead of the first.
    pub fn at_nth(self, n: u32) -> Self {
        self.skip.set(n.saturating_sub(1));
        self
    }

    fn fire(&self, op: &str, key: &str) {
        if op == self.trigger.0 && key.starts_with(self.trigger.1) {
            if self.skip.get() > 0 {
                self.skip.set(self.skip.get() - 1);
                return;
            }
            let hook = self.hook.borrow_mut().take();
            if let Some(hook) = hook {
                hook();
            }
        }
    }
}

impl KeyValue for Interleaved<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.fire("get", key);
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.fire("set", key);
        self.inner.set(key, value)
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        for (key, _) in entries {
            self.fire("set", key);
        }
        self.inner.set_many(entries)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.fire("delete", key);
        self.inner.delete(key)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        for key in keys {
            self.fire("delete", key);
        }
        self.inner.delete_many(keys)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.fire("increment", key);
        self.inner.increment(key, delta)
    }
}

/// A store whose writes (`set`, `set_many`, `increment`, and with `with_deletes` also
/// deletes) to keys starting with `prefix` fail while `failures` is above zero; each failure
/// uses one up.
pub struct Flaky<'a> {
    /// The store underneath.
    pub inner: &'a dyn KeyValue,
    /// Key prefix of the writes that fail.
    pub prefix: &'static str,
    /// How many more writes fail.
    pub failures: Cell<u32>,
    /// Whether deletes fail too.
    pub deletes: bool,
}

impl<'a> Flaky<'a> {
    /// Fails the next `failures` writes to keys starting with `prefix`.
    pub fn new(inner: &'a dyn KeyValue, prefix: &'static str, failures: u32) -> Self {
        Self {
            inner,
            prefix,
            failures: Cell::new(failures),
            deletes: false,
        }
    }

    /// Makes deletes of matching keys fail as well.
    pub fn with_deletes(mut self) -> Self {
        self.deletes = true;
        self
    }

    fn strike(&self, key: &str) -> Result<(), StoreError> {
        if key.starts_with(self.prefix) && self.failures.get() > 0 {
            self.failures.set(self.failures.get() - 1);
            return Err(StoreError::Other("injected: database is locked".into()));
        }
        Ok(())
    }
}

impl KeyValue for Flaky<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.strike(key)?;
        self.inner.set(key, value)
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        for (key, _) in entries {
            self.strike(key)?;
        }
        self.inner.set_many(entries)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        if self.deletes {
            self.strike(key)?;
        }
        self.inner.delete(key)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        if self.deletes {
            for key in keys {
                self.strike(key)?;
            }
        }
        self.inner.delete_many(keys)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.strike(key)?;
        self.inner.increment(key, delta)
    }
}

/// Outbound HTTP that runs `hook` once, at the first batch with a request whose URL contains
/// `part`: while it is in flight (another request acting during a slow call), or once it is
/// answered and before the caller reads the answers (time passing, or the world changing,
/// between a gateway's answer and its use).
pub struct HookedCall<'a> {
    /// The client underneath.
    pub inner: &'a dyn HttpClient,
    /// URL part that fires the hook.
    pub part: &'static str,
    /// Whether the hook runs after the answers rather than before.
    pub after: bool,
    /// Runs once.
    pub hook: RefCell<Option<Box<dyn FnOnce() + 'a>>>,
}

impl<'a> HookedCall<'a> {
    /// Runs `hook` during the first call to a URL containing `part`.
    pub fn during(inner: &'a dyn HttpClient, part: &'static str, hook: impl FnOnce() + 'a) -> Self {
        Self {
            inner,
            part,
            after: false,
            hook: RefCell::new(Some(Box::new(hook))),
        }
    }

    /// Runs `hook` once the first call to a URL containing `part` was answered.
    pub fn after(inner: &'a dyn HttpClient, part: &'static str, hook: impl FnOnce() + 'a) -> Self {
        Self {
            after: true,
            ..Self::during(inner, part, hook)
        }
    }

    fn fire(&self) {
        let hook = self.hook.borrow_mut().take();
        if let Some(hook) = hook {
            hook();
        }
    }
}

impl HttpClient for HookedCall<'_> {
    fn send_all(
        &self,
        requests: Vec<OutboundRequest>,
    ) -> Vec<Result<OutboundResponse, TransportError>> {
        let fires = requests.iter().any(|r| r.url.contains(self.part));
        if fires && !self.after {
            self.fire();
        }
        let answers = self.inner.send_all(requests);
        if fires && self.after {
            self.fire();
        }
        answers
    }
}

/// A store that counts reads and writes.
pub struct Counting<'a> {
    /// The store underneath.
    pub inner: &'a dyn KeyValue,
    /// `get`s so far.
    pub reads: Cell<u64>,
    /// Writes so far (set, set_many, delete, delete_many, increment).
    pub writes: Cell<u64>,
}

impl<'a> Counting<'a> {
    /// Counts operations on `inner`.
    pub fn new(inner: &'a dyn KeyValue) -> Self {
        Self {
            inner,
            reads: Cell::new(0),
            writes: Cell::new(0),
        }
    }

    fn wrote(&self) {
        self.writes.set(self.writes.get() + 1);
    }
}

impl KeyValue for Counting<'_> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.reads.set(self.reads.get() + 1);
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.wrote();
        self.inner.set(key, value)
    }
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.wrote();
        self.inner.set_many(entries)
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.wrote();
        self.inner.delete(key)
    }
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.wrote();
        self.inner.delete_many(keys)
    }
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.wrote();
        self.inner.increment(key, delta)
    }
}
