//! The simulated world one run happens in: the two stores, one clock, the payment gateway and
//! the bot as they would answer, the faults in force, and the trace of everything that happened.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};
use topup_core::config::Secret;
use topup_core::platform::{OutboundRequest, OutboundResponse, TransportError};
use topup_core::signature::verify_signature;
use topup_core::testing::{MapVariables, MemoryStore};

use crate::rng::Rng;

/// The shared secret of every run.
pub const SECRET: &str = "sim-secret";
/// Where the simulated clock starts (Unix ms).
pub const EPOCH: u64 = 1_800_000_000_000;
/// Base URLs of the two upstreams.
pub const PG_URL: &str = "http://pg.sim";
/// Base URL of the bot.
pub const BOT_URL: &str = "http://bot.sim";

/// The configuration of one run, as variables and as numbers the harness needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Credit lease.
    pub lease_ms: u64,
    /// Scheduled retry delays.
    pub schedule_ms: Vec<u64>,
    /// Deposit lifetime.
    pub ttl_ms: u64,
    /// Variables as the app reads them.
    pub variables: Vec<(&'static str, String)>,
}

impl SimConfig {
    /// A random configuration that both today's and the intended rules accept.
    pub fn random(rng: &mut Rng) -> Self {
        let lease_s = *rng.pick(&[5u64, 10, 30]);
        let bot_timeout_ms = *rng.pick(&[1_000u64, 2_000, 3_000]);
        let pg_timeout_ms = *rng.pick(&[2_000u64, 5_000]);
        let (ttl_days, ttl_ms) = *rng.pick(&[
            ("0.005", 432_000u64),
            ("0.02", 1_728_000),
            ("1", 86_400_000),
        ]);
        let schedules: &[&[u64]] = &[&[2, 5, 30], &[10, 60], &[60, 300], &[5, 5, 400]];
        let schedule: Vec<u64> = rng
            .pick(schedules)
            .iter()
            .map(|s| s * 1000)
            .filter(|ms| *ms <= ttl_ms)
            .collect();
        let schedule = if schedule.is_empty() {
            vec![5_000]
        } else {
            schedule
        };
        let max_retries = *rng.pick(&[2u64, 3, 8]);
        let nonce_ttl_s = *rng.pick(&[60u64, 600]);
        let schedule_text = schedule
            .iter()
            .map(|ms| (ms / 1000).to_string())
            .collect::<Vec<_>>()
            .join(",");
        Self {
            lease_ms: lease_s * 1000,
            schedule_ms: schedule,
            ttl_ms,
            variables: vec![
                ("shared_secret", SECRET.into()),
                ("central_pg_base_url", PG_URL.into()),
                ("bot_backend_url", BOT_URL.into()),
                ("credit_lease_seconds", lease_s.to_string()),
                ("bot_timeout_ms", bot_timeout_ms.to_string()),
                ("central_pg_timeout_ms", pg_timeout_ms.to_string()),
                ("deposit_ttl_days", ttl_days.into()),
                ("credit_retry_schedule", schedule_text),
                ("credit_max_retries", max_retries.to_string()),
                ("nonce_ttl_seconds", nonce_ttl_s.to_string()),
            ],
        }
    }

    /// The variables for the app.
    pub fn variables(&self) -> MapVariables {
        self.variables
            .iter()
            .fold(MapVariables::new(&[]), |vars, (name, value)| {
                vars.with(name, value)
            })
    }

    /// The longest wait between two automatic attempts.
    pub fn longest_step_ms(&self) -> u64 {
        self.schedule_ms
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.lease_ms)
    }
}

/// How likely each fault is while faults are on.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// A store operation fails.
    pub store_error: f64,
    /// The request's process dies at a store operation (or just before answering).
    pub crash: f64,
    /// The clock jumps (past a lease, a retry, a TTL) between two operations.
    pub clock_jump: f64,
    /// The bot misbehaves on a credit call.
    pub bot_fault: f64,
    /// The gateway misbehaves on a create call.
    pub pg_fault: f64,
}

impl Faults {
    /// Fault rates for one run: some runs are calm, most are rough.
    pub fn random(rng: &mut Rng) -> Self {
        let level = *rng.pick(&[0.0, 0.3, 1.0, 1.0, 2.0]);
        Self {
            store_error: 0.02 * level,
            crash: 0.012 * level,
            clock_jump: 0.004 * level,
            bot_fault: (0.25 * level).min(0.6),
            pg_fault: (0.15 * level).min(0.5),
        }
    }
}

/// The payment gateway: issues invoices.
#[derive(Default)]
pub struct Gateway {
    minted: u64,
}

/// One credit call as the bot received it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Raw body.
    pub body: Vec<u8>,
}

/// The bot: verifies every credit call and applies each `Idempotency-Key` once.
#[derive(Default)]
pub struct Bot {
    /// Every credit call, by idempotency key.
    pub deliveries: BTreeMap<String, Vec<Delivery>>,
    /// The body applied per key (the first one accepted).
    pub applied: BTreeMap<String, Vec<u8>>,
    /// Every application in order, with its time (a key forgotten and applied again appears
    /// twice).
    pub history: Vec<(String, Vec<u8>, u64)>,
    /// Calls that were not authentic or malformed.
    pub violations: Vec<String>,
}

/// Store operations and faults counted in a run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// Store operations executed (or refused by an injected error).
    pub store_ops: u64,
    /// Injected store errors.
    pub store_errors: u64,
    /// Injected crashes.
    pub crashes: u64,
    /// Injected clock jumps.
    pub clock_jumps: u64,
    /// Misbehaving upstream answers.
    pub upstream_faults: u64,
    /// Requests served to completion.
    pub requests: u64,
    /// Invariant checks made.
    pub checks: u64,
}

/// Everything one run shares.
pub struct World {
    /// The seed.
    pub seed: u64,
    /// All randomness.
    pub rng: RefCell<Rng>,
    /// Unix ms.
    pub clock: Cell<u64>,
    /// Label `default`.
    pub records: MemoryStore,
    /// Label `claims`.
    pub claims: MemoryStore,
    /// The configuration.
    pub config: SimConfig,
    /// Its variables.
    pub variables: MapVariables,
    /// Fault rates.
    pub faults: Faults,
    /// Whether faults are injected now.
    pub faults_on: Cell<bool>,
    /// The gateway.
    pub gateway: RefCell<Gateway>,
    /// The bot.
    pub bot: RefCell<Bot>,
    /// Counters.
    pub counters: Cell<Counters>,
    trace: RefCell<String>,
    tracing: bool,
}

impl World {
    /// A fresh world for `seed`.
    pub fn new(seed: u64, tracing: bool) -> Self {
        let mut rng = Rng::new(seed);
        let config = SimConfig::random(&mut rng);
        let faults = Faults::random(&mut rng);
        Self {
            seed,
            variables: config.variables(),
            config,
            faults,
            rng: RefCell::new(rng),
            clock: Cell::new(EPOCH),
            records: MemoryStore::default(),
            claims: MemoryStore::default(),
            faults_on: Cell::new(true),
            gateway: RefCell::default(),
            bot: RefCell::default(),
            counters: Cell::default(),
            trace: RefCell::default(),
            tracing,
        }
    }

    /// Runs `f` on the generator.
    pub fn rng<T>(&self, f: impl FnOnce(&mut Rng) -> T) -> T {
        f(&mut self.rng.borrow_mut())
    }

    /// Now (Unix ms).
    pub fn now(&self) -> u64 {
        self.clock.get()
    }

    /// Moves the clock forward.
    pub fn advance(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }

    /// Updates the counters.
    pub fn count(&self, f: impl FnOnce(&mut Counters)) {
        let mut counters = self.counters.get();
        f(&mut counters);
        self.counters.set(counters);
    }

    /// Whether a fault of probability `p` strikes now.
    pub fn strikes(&self, p: f64) -> bool {
        self.faults_on.get() && self.rng(|r| r.chance(p))
    }

    /// Appends a line to the trace (kept only when tracing).
    pub fn log(&self, line: impl FnOnce() -> String) {
        if self.tracing {
            let at = self.now() - EPOCH;
            let _ = writeln!(
                self.trace.borrow_mut(),
                "{:>9}.{:03}s {}",
                at / 1000,
                at % 1000,
                line()
            );
        }
    }

    /// The trace so far.
    pub fn trace(&self) -> String {
        self.trace.borrow().clone()
    }

    /// Answers outbound calls as the gateway and the bot would; returns the results and how
    /// long the batch took (the calls of one batch run concurrently).
    pub fn answer(
        &self,
        requests: &[OutboundRequest],
    ) -> (Vec<Result<OutboundResponse, TransportError>>, u64) {
        let mut longest = 0;
        let results = requests
            .iter()
            .map(|request| {
                let (result, took) = if request.url.starts_with(PG_URL) {
                    self.gateway_answer(request)
                } else {
                    self.bot_answer(request)
                };
                let took = took.min(timeout_ms(request));
                longest = longest.max(took);
                result
            })
            .collect();
        (results, longest)
    }

    fn gateway_answer(
        &self,
        request: &OutboundRequest,
    ) -> (Result<OutboundResponse, TransportError>, u64) {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if !authentic(request) || body["orderId"].as_str().is_none() {
            self.bot.borrow_mut().violations.push(format!(
                "gateway got an unauthentic or malformed call: {body}"
            ));
            return (ok(401, json!({"error": "bad signature"})), 5);
        }
        let fault = self.strikes(self.faults.pg_fault);
        let kind = if fault {
            self.count(|c| c.upstream_faults += 1);
            self.rng(|r| r.below(5))
        } else {
            99
        };
        let timeout = timeout_ms(request);
        let mint = || {
            let mut gateway = self.gateway.borrow_mut();
            gateway.minted += 1;
            let order = body["orderId"].as_str().unwrap_or_default();
            format!("INV{}-{order}", gateway.minted)
        };
        let latency = self.rng(|r| r.range(20, 400));
        let (result, took, what) = match kind {
            // Slow beyond the timeout; the invoice may or may not have been made.
            0 => {
                if self.rng(|r| r.chance(0.5)) {
                    mint();
                }
                (Err(TransportError::Timeout), timeout, "times out")
            }
            1 => (
                ok(503, json!({"error": "maintenance"})),
                latency,
                "answers 503",
            ),
            2 => (
                Ok(OutboundResponse {
                    status: 200,
                    body: b"<html>".to_vec(),
                }),
                latency,
                "answers garbage",
            ),
            3 => (Err(TransportError::ConnectionRefused), 1, "refuses"),
            // Slow but in time.
            4 => {
                let reference = mint();
                let took = self.rng(|r| r.range(timeout / 2, timeout.saturating_sub(1)));
                (invoice(&reference), took, "answers slowly")
            }
            _ => {
                let reference = mint();
                (invoice(&reference), latency, "issues an invoice")
            }
        };
        self.log(|| format!("  gateway {what} for {}", body["orderId"]));
        (result, took)
    }

    fn bot_answer(
        &self,
        request: &OutboundRequest,
    ) -> (Result<OutboundResponse, TransportError>, u64) {
        let key = request
            .headers
            .iter()
            .find(|(n, _)| n == "idempotency-key")
            .map(|(_, v)| v.clone());
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let deposit = body["depositId"].as_str().map(str::to_string);
        let (Some(key), Some(deposit)) = (key, deposit) else {
            self.bot
                .borrow_mut()
                .violations
                .push(format!("credit call without key or depositId: {body}"));
            return (ok(400, json!({"ok": false})), 5);
        };
        if !authentic(request) || key != deposit {
            self.bot.borrow_mut().violations.push(format!(
                "unauthentic credit call or key {key} != depositId {deposit}"
            ));
            return (ok(401, json!({"ok": false})), 5);
        }
        let now = self.now();
        self.bot
            .borrow_mut()
            .deliveries
            .entry(key.clone())
            .or_default()
            .push(Delivery {
                body: request.body.clone(),
            });
        let apply = || {
            let mut bot = self.bot.borrow_mut();
            if !bot.applied.contains_key(&key) {
                bot.applied.insert(key.clone(), request.body.clone());
                bot.history.push((key.clone(), request.body.clone(), now));
            }
        };
        let timeout = timeout_ms(request);
        let latency = self.rng(|r| r.range(5, 200));
        let kind = if self.strikes(self.faults.bot_fault) {
            self.count(|c| c.upstream_faults += 1);
            self.rng(|r| r.below(7))
        } else {
            99
        };
        let (result, took, what) = match kind {
            0 => (ok(503, json!({"ok": false})), latency, "answers 503"),
            1 => (
                ok(200, json!({"ok": false, "error": "busy"})),
                latency,
                "declines",
            ),
            2 => (Err(TransportError::Timeout), timeout, "hangs"),
            3 => {
                apply();
                (
                    Err(TransportError::Timeout),
                    timeout,
                    "applies, then its answer is lost",
                )
            }
            4 => (Err(TransportError::ConnectionRefused), 1, "is down"),
            5 => {
                // Trickles its answer: the whole exchange is cut at the deadline.
                if self.rng(|r| r.chance(0.5)) {
                    apply();
                }
                (Err(TransportError::Timeout), timeout, "trickles")
            }
            6 => {
                apply();
                let took = self.rng(|r| r.range(timeout / 2, timeout.saturating_sub(1)));
                (ok(200, json!({"ok": true})), took, "accepts slowly")
            }
            _ => {
                apply();
                (ok(200, json!({"ok": true})), latency, "accepts")
            }
        };
        self.log(|| format!("  bot {what} the credit of {key}"));
        (result, took)
    }
}

fn timeout_ms(request: &OutboundRequest) -> u64 {
    u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX)
}

fn authentic(request: &OutboundRequest) -> bool {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    header("authorization") == Some(&format!("Bearer {SECRET}"))
        && header("x-signature")
            .is_some_and(|sig| verify_signature([&Secret::new(SECRET)], &request.body, sig))
}

fn ok(status: u16, body: Value) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status,
        body: body.to_string().into_bytes(),
    })
}

fn invoice(reference: &str) -> Result<OutboundResponse, TransportError> {
    ok(
        200,
        json!({"statusCode": "00", "data": {"reference": reference,
            "paymentUrl": format!("https://pay.sim/{reference}")}}),
    )
}
