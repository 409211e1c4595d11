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

use crate::gateways::{self, gateway_of, Gw, Ledger, Rules, PG_URL};
use crate::rng::Rng;

/// The shared secret of every run.
pub const SECRET: &str = "sim-secret";
/// Where the simulated clock starts (Unix ms).
pub const EPOCH: u64 = 1_800_000_000_000;
/// Base URL of the bot `default`.
pub const BOT_URL: &str = "http://bot.sim";

/// A bot behind the deployment: its id, its secret (its key and what signs its credits) and
/// its credit URL.
pub struct SimBot {
    /// Its id.
    pub id: &'static str,
    /// Its secret.
    pub secret: &'static str,
    /// Where its credits go.
    pub credit_url: &'static str,
}

/// The bots of every run: `default` (the single-bot variables) and two of `bots`.
pub const BOTS: [SimBot; 3] = [
    SimBot {
        id: "default",
        secret: SECRET,
        credit_url: "http://bot.sim/internal/deposit-callback",
    },
    SimBot {
        id: "shop",
        secret: "sim-shop-secret",
        credit_url: "http://shop.sim/credit",
    },
    SimBot {
        id: "wa",
        secret: "sim-wa-secret",
        credit_url: "http://wa.sim:8080/hook/topup",
    },
];

/// The bot whose user `user` is: a named bot's users carry its id (`shop:u1`), so that a
/// credit shows whose it is even when the create's answer was lost.
pub fn bot_of(user: &str) -> &'static SimBot {
    user.split_once(':')
        .and_then(|(prefix, _)| BOTS.iter().find(|b| b.id == prefix))
        .unwrap_or(&BOTS[0])
}

/// The configuration of one run, as variables and as numbers the harness needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Credit lease.
    pub lease_ms: u64,
    /// Scheduled retry delays.
    pub schedule_ms: Vec<u64>,
    /// Status check delays.
    pub reconcile_ms: Vec<u64>,
    /// Deposit lifetime.
    pub ttl_ms: u64,
    /// The gateways deposits are made at (Midtrans only with a lifetime long enough for its
    /// shortest page).
    pub gateways: Vec<Gw>,
    /// How the gateways behave in this run.
    pub rules: Rules,
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
        let text = |steps: &[u64]| {
            steps
                .iter()
                .map(|ms| (ms / 1000).to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let reconciles: &[&[u64]] = &[
            &[5, 20, 600],
            &[10, 30, 90, 1800],
            &[30, 300],
            &[3, 3, 60, 900],
        ];
        let reconcile: Vec<u64> = rng.pick(reconciles).iter().map(|s| s * 1000).collect();
        let reconcile_after_s = *rng.pick(&[2u64, 10, 60]);
        let rules = Rules {
            midtrans_reuses_expired: rng.chance(0.5),
            tripay_fee: *rng.pick(&[0u64, 750]),
            duitku_legacy: rng.chance(0.3),
            pg_timestamped: rng.chance(0.3),
        };
        // Midtrans's page is open 5 minutes at least: its invoices need a lifetime of 20.
        let gateways: Vec<Gw> = Gw::ALL
            .into_iter()
            .filter(|gw| *gw != Gw::Midtrans || ttl_ms >= 1_200_000)
            .collect();
        let enabled = gateways
            .iter()
            .map(|g| g.name())
            .collect::<Vec<_>>()
            .join(",");
        let mut variables = vec![
            ("shared_secret", SECRET.into()),
            ("central_pg_base_url", PG_URL.into()),
            ("bot_backend_url", BOT_URL.into()),
            ("credit_lease_seconds", lease_s.to_string()),
            ("bot_timeout_ms", bot_timeout_ms.to_string()),
            ("central_pg_timeout_ms", pg_timeout_ms.to_string()),
            ("gateway_timeout_ms", pg_timeout_ms.to_string()),
            ("deposit_ttl_days", ttl_days.into()),
            ("credit_retry_schedule", text(&schedule)),
            ("credit_max_retries", max_retries.to_string()),
            ("nonce_ttl_seconds", nonce_ttl_s.to_string()),
            ("gateways_enabled", enabled),
            ("reconcile_after_seconds", reconcile_after_s.to_string()),
            ("reconcile_schedule", text(&reconcile)),
            (
                "reconcile_max_per_sweep",
                rng.pick(&[2u64, 5, 20]).to_string(),
            ),
        ];
        variables.extend(gateways::variables(&rules));
        let named: Vec<Value> = BOTS[1..]
            .iter()
            .map(|b| json!({"id": b.id, "secret": b.secret, "creditUrl": b.credit_url}))
            .collect();
        variables.push(("bots", Value::Array(named).to_string()));
        variables.push(("bot_origin_1", "http://shop.sim".into()));
        variables.push(("bot_origin_2", "http://wa.sim:8080".into()));
        variables.push(("admin_token", OPERATOR_TOKEN.into()));
        Self {
            lease_ms: lease_s * 1000,
            schedule_ms: schedule,
            reconcile_ms: reconcile,
            ttl_ms,
            gateways,
            rules,
            variables,
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

    /// The longest wait between two automatic attempts or status checks.
    pub fn longest_step_ms(&self) -> u64 {
        self.schedule_ms
            .iter()
            .chain(&self.reconcile_ms)
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
    /// The gateway's status API misbehaves.
    pub status_fault: f64,
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
            status_fault: (0.2 * level).min(0.5),
        }
    }
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
    /// Notifications the adversary sent.
    pub adversary: u64,
}

/// The operator console's token in every run.
pub const OPERATOR_TOKEN: &str = "sim-operator-token-0123456789";

/// Everything one run shares.
pub struct World {
    /// The seed.
    pub seed: u64,
    /// All randomness but the bots'.
    pub rng: RefCell<Rng>,
    /// Which bot makes each deposit: a stream of its own, so that a seed found before there
    /// were several bots still plays its scenario.
    pub bots_rng: RefCell<Rng>,
    /// What the operator does from the console: a stream of its own too.
    pub operator_rng: RefCell<Rng>,
    /// Unix ms.
    pub clock: Cell<u64>,
    /// Label `default`.
    pub records: MemoryStore,
    /// Label `claims`.
    pub claims: MemoryStore,
    /// The configuration.
    pub config: SimConfig,
    /// Its variables as they are now (gateways are enabled and disabled during a run).
    pub variables: RefCell<MapVariables>,
    /// Fault rates.
    pub faults: Faults,
    /// Whether faults are injected now.
    pub faults_on: Cell<bool>,
    /// What every gateway really made and was paid.
    pub ledger: RefCell<Ledger>,
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
            variables: RefCell::new(config.variables()),
            config,
            faults,
            rng: RefCell::new(rng),
            bots_rng: RefCell::new(Rng::new(seed ^ 0xB075_B075_B075_B075)),
            operator_rng: RefCell::new(Rng::new(seed ^ 0x0BE2_A702_0BE2_A702)),
            clock: Cell::new(EPOCH),
            records: MemoryStore::default(),
            claims: MemoryStore::default(),
            faults_on: Cell::new(true),
            ledger: RefCell::default(),
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
                let (result, took) = match gateway_of(&request.url) {
                    Some(gw) => self.gateway_answer(gw, request),
                    None => self.bot_answer(request),
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
        gw: Gw,
        request: &OutboundRequest,
    ) -> (Result<OutboundResponse, TransportError>, u64) {
        let creating = !is_status_query(gw, request);
        let rate = if creating {
            self.faults.pg_fault
        } else {
            self.faults.status_fault
        };
        let fault = self.strikes(rate);
        let kind = if fault {
            self.count(|c| c.upstream_faults += 1);
            self.rng(|r| r.below(5))
        } else {
            99
        };
        let timeout = timeout_ms(request);
        let now = self.now();
        let serve = || {
            let rules = &self.config.rules;
            let mut ledger = self.ledger.borrow_mut();
            let served = if creating {
                gateways::create(&mut ledger, rules, gw, request, now)
            } else {
                gateways::status(&ledger, rules, gw, request, now)
            };
            match served {
                Ok(answer) => answer,
                Err((why, answer)) => {
                    self.bot.borrow_mut().violations.push(why);
                    answer
                }
            }
        };
        let latency = self.rng(|r| r.range(20, 400));
        let (result, took, what) = match kind {
            // Slow beyond the timeout; a create may or may not have been made.
            0 => {
                if creating && self.rng(|r| r.chance(0.5)) {
                    let _ = serve();
                }
                (Err(TransportError::Timeout), timeout, "times out")
            }
            1 => (
                gateways::answer(503, json!({"error": "maintenance"})),
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
                let took = self.rng(|r| r.range(timeout / 2, timeout.saturating_sub(1)));
                (serve(), took, "answers slowly")
            }
            _ => (serve(), latency, "answers"),
        };
        self.log(|| {
            let body = String::from_utf8_lossy(
                result
                    .as_ref()
                    .map(|r| r.body.as_slice())
                    .unwrap_or_default(),
            )
            .chars()
            .take(120)
            .collect::<String>();
            format!("  {} {what} {}: {body}", gw.name(), request.url)
        });
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
        // The bot this call reached: the one whose credit URL it is.
        let Some(receiver) = BOTS.iter().find(|b| request.url == b.credit_url) else {
            self.bot.borrow_mut().violations.push(format!(
                "credit call to {}, no bot's credit URL",
                request.url
            ));
            return (Err(TransportError::Denied), 1);
        };
        if !authentic(request, receiver.secret) || key != deposit {
            self.bot.borrow_mut().violations.push(format!(
                "credit call to {} not signed with its secret, or key {key} != depositId {deposit}",
                receiver.id
            ));
            return (ok(401, json!({"ok": false})), 5);
        }
        let owner = bot_of(body["userId"].as_str().unwrap_or_default());
        let named = body.get("botId").and_then(Value::as_str);
        if owner.id != receiver.id || named != (receiver.id != "default").then_some(receiver.id) {
            self.bot.borrow_mut().violations.push(format!(
                "the credit of {deposit} (user {}, botId {named:?}) reached bot {}",
                body["userId"], receiver.id
            ));
            return (ok(403, json!({"ok": false})), 5);
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

/// Whether `request` asks a gateway about a transaction (else it creates one).
fn is_status_query(gw: Gw, request: &OutboundRequest) -> bool {
    match gw {
        Gw::Central => false,
        Gw::Duitku => request.url.ends_with("/transactionStatus"),
        Gw::Midtrans => !request.url.contains("/snap/"),
        Gw::Xendit | Gw::Tripay => request.method == topup_core::platform::HttpMethod::Get,
    }
}

fn timeout_ms(request: &OutboundRequest) -> u64 {
    u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX)
}

fn authentic(request: &OutboundRequest, secret: &str) -> bool {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    header("authorization") == Some(&format!("Bearer {secret}"))
        && header("x-signature")
            .is_some_and(|sig| verify_signature([&Secret::new(secret)], &request.body, sig))
}

fn ok(status: u16, body: Value) -> Result<OutboundResponse, TransportError> {
    Ok(OutboundResponse {
        status,
        body: body.to_string().into_bytes(),
    })
}
