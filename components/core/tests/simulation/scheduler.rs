//! One simulation run: a seeded scheduler that runs every request as a coroutine, interleaves
//! them at each store operation and outbound call, and injects faults there.
//!
//! Drivers stand for the parties outside: bots create deposits and retry as real bots do,
//! users pay (or fail to pay) the invoices shown to them, the gateway calls back and retries
//! until it gets a clean answer, an operator sweeps on a schedule and retries by hand, and
//! observers read the status.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::rc::Rc;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use serde_json::{json, Value};
use topup_core::config::Secret;
use topup_core::http::{Request, Response};
use topup_core::routes;
use topup_core::signature::sign;

use crate::platform::{Resume, SimPlatform, Yield};
use crate::world::{World, EPOCH, SECRET};

/// Why a request was made, so its answer reaches the right driver.
#[derive(Debug, Clone)]
pub enum Call {
    /// A bot's create (`plan`, which requester, attempt number).
    Create {
        /// Index of the deposit plan.
        plan: usize,
        /// 0: the deposit's own user; 1: another user trying the same id.
        requester: usize,
        /// Attempt number.
        attempt: u32,
    },
    /// The gateway's callback of one payment event.
    Callback {
        /// Index of the callback chain.
        chain: usize,
    },
    /// A copy of a callback sent alongside (a double send or a storm).
    Duplicate {
        /// Index of the callback chain.
        chain: usize,
    },
    /// `POST /internal/credit-retry`; a periodic one schedules the next when it ends.
    Sweep {
        /// Run by the scheduler (cron), not an extra overlapping one.
        periodic: bool,
    },
    /// `POST /deposit/retry-credit`.
    ManualRetry(String),
    /// `GET /deposit/status`.
    Status(String),
}

/// A deposit a bot wants: its id (chosen, or left to the app), user and amount.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Caller-chosen id.
    pub id: Option<String>,
    /// (user, amount) per requester: the deposit's own, then another user's.
    pub requesters: Vec<(String, u64)>,
    /// Create attempts left per requester.
    pub attempts_left: Vec<u32>,
    /// Whether a requester holds an answer already.
    pub answered: Vec<bool>,
    /// When each requester first asked (a deposit's life cannot start before).
    pub first_asked: Vec<Option<u64>>,
    /// 0 for a first use of the id, 1 for its use again after expiry.
    pub era: u32,
}

/// An invoice a bot received (a create answered 200), so a user can pay it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The deposit id.
    pub deposit_id: String,
    /// Gateway reference.
    pub reference: String,
    /// The user the create named.
    pub user: String,
    /// Its amount.
    pub amount: u64,
    /// The plan's era.
    pub era: u32,
    /// Before this the deposit is surely alive (its creation plus its TTL, less a margin).
    pub alive_until: u64,
}

/// A payment event and the gateway's attempts to report it.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The callback body.
    pub body: String,
    /// Its `X-Nonce`, if the gateway sends one (the same on every retry).
    pub nonce: Option<String>,
    /// The deposit.
    pub deposit_id: String,
    /// Whether it reports a payment (else a failure).
    pub paid: bool,
    /// The invoice.
    pub reference: String,
    /// Whether the amount is the invoice's.
    pub correct: bool,
    /// Whether a 200 arrived.
    pub done: bool,
    /// Clean non-200 answers; the gateway gives up after a few.
    pub refusals: u32,
    /// Attempts made.
    pub attempts: u32,
    /// The app owes this payment: it answered 200, or refused it while the deposit was alive.
    pub owed: bool,
}

/// What an observer saw.
#[derive(Debug, Clone)]
pub struct Observation {
    /// When the request started.
    pub started: u64,
    /// When it answered.
    pub at: u64,
    /// The deposit.
    pub deposit_id: String,
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Value,
}

struct Actor {
    /// The store operation it was let go on, logged when it runs.
    pending: Option<String>,
    started: u64,
    co: Coroutine<Resume, Yield, Response, DefaultStack>,
    resume: Option<Resume>,
    wake_at: u64,
    call: Call,
    faulted: bool,
    name: String,
}

#[derive(Debug, Clone)]
enum Event {
    Spawn(Call),
    Corrupt,
    FaultsEnd,
}

/// A run in progress, and after it ends, everything the invariants look at.
pub struct Sim {
    /// The world.
    pub world: Rc<World>,
    /// Deposit plans.
    pub plans: Vec<Plan>,
    /// Invoices shown to bots.
    pub shown: Vec<Shown>,
    /// Payment events.
    pub chains: Vec<Chain>,
    /// Status observations.
    pub observations: Vec<Observation>,
    /// Deposits whose records a fault corrupted.
    pub corrupted: BTreeSet<String>,
    /// Last sweep answer.
    pub last_sweep: Value,
    /// Problems found while running (answers the contract forbids).
    pub problems: Vec<String>,
    actors: Vec<Option<Actor>>,
    events: BinaryHeap<Reverse<(u64, u64)>>,
    event_bodies: BTreeMap<u64, Event>,
    next_event: u64,
    stacks: Vec<DefaultStack>,
    paid_shown: BTreeSet<String>,
    /// When an id's second era began.
    pub era_starts: BTreeMap<String, u64>,
}

const STACK_SIZE: usize = 256 * 1024;

impl Sim {
    /// Builds the workload of `seed`.
    pub fn new(seed: u64, tracing: bool) -> Self {
        let world = Rc::new(World::new(seed, tracing));
        let mut sim = Self {
            world,
            plans: Vec::new(),
            shown: Vec::new(),
            chains: Vec::new(),
            observations: Vec::new(),
            corrupted: BTreeSet::new(),
            last_sweep: Value::Null,
            problems: Vec::new(),
            actors: Vec::new(),
            events: BinaryHeap::new(),
            event_bodies: BTreeMap::new(),
            next_event: 0,
            stacks: Vec::new(),
            paid_shown: BTreeSet::new(),
            era_starts: BTreeMap::new(),
        };
        sim.plan_workload();
        sim
    }

    fn rng<T>(&self, f: impl FnOnce(&mut crate::rng::Rng) -> T) -> T {
        self.world.rng(f)
    }

    fn at(&mut self, at: u64, event: Event) {
        let n = self.next_event;
        self.next_event += 1;
        self.events.push(Reverse((at, n)));
        self.event_bodies.insert(n, event);
    }

    fn plan_workload(&mut self) {
        let deposits = self.rng(|r| r.range(2, 5)) as usize;
        let mut last = EPOCH;
        let amounts = [5_000u64, 10_000, 25_000];
        for k in 0..deposits {
            let chosen = self.rng(|r| r.chance(0.8));
            let amount = amounts[self.rng(|r| r.below(3)) as usize];
            let mut requesters = vec![(format!("u{k}"), amount)];
            if chosen && self.rng(|r| r.chance(0.2)) {
                requesters.push((format!("x{k}"), amount + 1_000));
            }
            let plan = self.plans.len();
            let n = requesters.len();
            self.plans.push(Plan {
                id: chosen.then(|| format!("D{k}")),
                requesters,
                attempts_left: vec![4; n],
                answered: vec![false; n],
                first_asked: vec![None; n],
                era: 0,
            });
            let start = EPOCH + self.rng(|r| r.range(0, 20_000));
            self.at(
                start,
                Event::Spawn(Call::Create {
                    plan,
                    requester: 0,
                    attempt: 1,
                }),
            );
            // A bot retrying on its own timeout while the first create is still running.
            if self.rng(|r| r.chance(0.3)) {
                let again = start + self.rng(|r| r.range(0, 1_500));
                self.at(
                    again,
                    Event::Spawn(Call::Create {
                        plan,
                        requester: 0,
                        attempt: 1,
                    }),
                );
            }
            if n > 1 {
                let other = start + self.rng(|r| r.range(0, 3_000));
                self.at(
                    other,
                    Event::Spawn(Call::Create {
                        plan,
                        requester: 1,
                        attempt: 1,
                    }),
                );
            }
            last = last.max(start);
        }
        // An id used again once its first deposit has expired.
        if self.rng(|r| r.chance(0.2)) {
            if let Some(k) = (0..self.plans.len()).find(|&k| self.plans[k].id.is_some()) {
                let id = self.plans[k].id.clone();
                let plan = self.plans.len();
                self.plans.push(Plan {
                    id,
                    requesters: vec![(format!("r{k}"), 7_000)],
                    attempts_left: vec![4],
                    answered: vec![false],
                    first_asked: vec![None],
                    era: 1,
                });
                let reuse = last + self.world.config.ttl_ms + self.rng(|r| r.range(1_000, 120_000));
                self.at(
                    reuse,
                    Event::Spawn(Call::Create {
                        plan,
                        requester: 0,
                        attempt: 1,
                    }),
                );
                last = reuse;
            }
        }
        let first_sweep = EPOCH + self.rng(|r| r.range(10_000, 60_000));
        self.at(first_sweep, Event::Spawn(Call::Sweep { periodic: true }));
        if self.rng(|r| r.chance(0.1)) {
            let when = EPOCH + self.rng(|r| r.range(20_000, 120_000));
            self.at(when, Event::Corrupt);
        }
        let end = last + 150_000;
        self.at(end, Event::FaultsEnd);
    }

    fn spawn(&mut self, call: Call) {
        if let Call::Create {
            plan, requester, ..
        } = &call
        {
            let now = self.world.now();
            self.plans[*plan].first_asked[*requester].get_or_insert(now);
        }
        let request = self.request_for(&call);
        let Some(request) = request else { return };
        let handler: fn(&Request, &topup_core::platform::Platform) -> Response = match &call {
            Call::Create { .. } => routes::create::handle,
            Call::Callback { .. } | Call::Duplicate { .. } => routes::callback::handle,
            Call::Sweep { .. } => routes::sweep::handle,
            Call::ManualRetry(_) => routes::manual_retry::handle,
            Call::Status(_) => routes::status::handle,
        };
        let world = self.world.clone();
        #[allow(
            clippy::expect_used,
            reason = "the simulation cannot run without stacks"
        )]
        let stack = self
            .stacks
            .pop()
            .unwrap_or_else(|| DefaultStack::new(STACK_SIZE).expect("a coroutine stack"));
        let co = Coroutine::with_stack(stack, move |channel, _first: Resume| {
            let platform = SimPlatform::new(&world, channel);
            handler(&request, &platform.platform())
        });
        let name = format!("a{}:{}", self.actors.len(), describe(&call));
        self.world.log(|| format!("{name} starts"));
        self.actors.push(Some(Actor {
            pending: None,
            started: self.world.now(),
            co,
            resume: Some(Resume::Go),
            wake_at: 0,
            call,
            faulted: false,
            name,
        }));
    }

    fn request_for(&mut self, call: &Call) -> Option<Request> {
        let bearer = format!("Bearer {SECRET}");
        Some(match call {
            Call::Create {
                plan, requester, ..
            } => {
                let plan = &self.plans[*plan];
                let (user, amount) = &plan.requesters[*requester];
                let mut body = json!({"userId": user, "amount": amount});
                if let Some(id) = &plan.id {
                    body["depositId"] = json!(id);
                }
                Request::new("POST", "/deposit/create")
                    .with_header("authorization", &bearer)
                    .with_header("content-type", "application/json")
                    .with_body(body.to_string())
            }
            Call::Callback { chain } | Call::Duplicate { chain } => {
                let chain = &self.chains[*chain];
                let mut request = Request::new("POST", "/internal/payment-callback")
                    .with_header("authorization", &bearer)
                    .with_header("content-type", "application/json")
                    .with_header(
                        "x-signature",
                        &sign(&Secret::new(SECRET), chain.body.as_bytes()),
                    )
                    .with_body(chain.body.clone());
                if let Some(nonce) = &chain.nonce {
                    request = request.with_header("x-nonce", nonce);
                }
                request
            }
            Call::Sweep { .. } => {
                Request::new("POST", "/internal/credit-retry").with_header("authorization", &bearer)
            }
            Call::ManualRetry(id) => {
                Request::new("POST", &format!("/deposit/retry-credit?depositId={id}"))
                    .with_header("authorization", &bearer)
            }
            Call::Status(id) => Request::new("GET", &format!("/deposit/status?depositId={id}"))
                .with_header("authorization", &bearer),
        })
    }

    /// Runs until no request is left and no event is due; returns whether anything ran.
    pub fn run_until_idle(&mut self) -> bool {
        let mut ran = false;
        loop {
            self.fire_due_events();
            let now = self.world.now();
            let runnable: Vec<usize> = self
                .actors
                .iter()
                .enumerate()
                .filter_map(|(i, a)| a.as_ref().filter(|a| a.wake_at <= now).map(|_| i))
                .collect();
            if runnable.is_empty() {
                let next_wake = self.actors.iter().flatten().map(|a| a.wake_at).min();
                let next_event = self.events.peek().map(|Reverse((at, _))| *at);
                match next_wake.into_iter().chain(next_event).min() {
                    Some(at) => self.world.clock.set(at.max(now)),
                    None => return ran,
                }
                continue;
            }
            ran = true;
            let pick = runnable[self.rng(|r| r.below(runnable.len() as u64)) as usize];
            // Running takes a little time; now and then a lot (a stall, a paused VM).
            self.world.advance(self.rng(|r| r.range(0, 3)));
            if self.world.strikes(self.world.faults.clock_jump) {
                self.jump_clock();
            }
            self.step(pick);
        }
    }

    fn jump_clock(&mut self) {
        let config = &self.world.config;
        let choices = [
            config.lease_ms + 1_000,
            config.longest_step_ms() + 1_000,
            config.ttl_ms + 61_000,
            self.world.rng(|r| r.range(1_000, 60_000)),
        ];
        let by = choices[self.rng(|r| r.below(choices.len() as u64)) as usize];
        self.world.count(|c| c.clock_jumps += 1);
        self.world
            .log(|| format!("-- the clock jumps {} s", by / 1000));
        self.world.advance(by);
    }

    fn fire_due_events(&mut self) {
        while let Some(Reverse((at, n))) = self.events.peek().copied() {
            if at > self.world.now() {
                break;
            }
            self.events.pop();
            let Some(event) = self.event_bodies.remove(&n) else {
                continue;
            };
            match event {
                Event::Spawn(call) => self.spawn(call),
                Event::Corrupt => self.corrupt_one(),
                Event::FaultsEnd => {
                    self.world.log(|| "== faults stop".into());
                    self.world.faults_on.set(false);
                }
            }
        }
    }

    fn corrupt_one(&mut self) {
        let keys: Vec<String> = self
            .world
            .records
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("deposit:") || k.starts_with("credit:"))
            .collect();
        if keys.is_empty() {
            return;
        }
        let key = keys[self.rng(|r| r.below(keys.len() as u64)) as usize].clone();
        let id = key.split(':').nth(1).unwrap_or_default().to_string();
        use topup_core::platform::KeyValue;
        let _ = self.world.records.set(&key, b"\x00not a record");
        self.world.log(|| format!("-- record {key} is corrupted"));
        self.corrupted.insert(id);
    }

    fn step(&mut self, index: usize) {
        let Some(mut actor) = self.actors[index].take() else {
            return;
        };
        let resume = actor.resume.take().unwrap_or(Resume::Go);
        if let Some(op) = actor.pending.take() {
            self.world.log(|| format!("{} {op}", actor.name));
        }
        match actor.co.resume(resume) {
            CoroutineResult::Yield(Yield::Store { label, op, key }) => {
                self.world.count(|c| c.store_ops += 1);
                if self.world.strikes(self.world.faults.crash) {
                    self.world.count(|c| c.crashes += 1);
                    self.world
                        .log(|| format!("{} dies before {op} {label} {key}", actor.name));
                    self.finish(actor, None);
                    return;
                }
                if self.world.strikes(self.world.faults.store_error) {
                    let applied = self.rng(|r| r.chance(0.3));
                    self.world.count(|c| c.store_errors += 1);
                    self.world.log(|| {
                        format!(
                            "{} {op} {label} {key} fails{}",
                            actor.name,
                            if applied { " after applying" } else { "" }
                        )
                    });
                    actor.faulted = true;
                    actor.resume = Some(Resume::Fail { applied });
                } else {
                    self.world
                        .log(|| format!("{} {op} {label} {key}", actor.name));
                    actor.resume = Some(Resume::Go);
                }
                self.actors[index] = Some(actor);
            }
            CoroutineResult::Yield(Yield::Http(requests)) => {
                self.world.log(|| {
                    format!(
                        "{} sends {}",
                        actor.name,
                        requests
                            .iter()
                            .map(|r| r.url.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
                let (results, took) = self.world.answer(&requests);
                actor.wake_at = self.world.now() + took;
                actor.resume = Some(Resume::Http(results));
                self.actors[index] = Some(actor);
            }
            CoroutineResult::Yield(Yield::Sleep(duration)) => {
                actor.wake_at = self.world.now() + duration.as_millis() as u64;
                actor.resume = Some(Resume::Go);
                self.actors[index] = Some(actor);
            }
            CoroutineResult::Return(response) => {
                // The process may die after the work, before the answer leaves.
                if self.world.strikes(self.world.faults.crash) {
                    self.world.count(|c| c.crashes += 1);
                    self.world
                        .log(|| format!("{} dies before answering", actor.name));
                    self.finish(actor, None);
                } else {
                    self.world.count(|c| c.requests += 1);
                    self.world.log(|| {
                        format!(
                            "{} answers {} {}",
                            actor.name,
                            response.status,
                            String::from_utf8_lossy(&response.body)
                                .chars()
                                .take(160)
                                .collect::<String>()
                        )
                    });
                    self.finish(actor, Some(response));
                }
            }
        }
    }

    /// Hands the answer (or `None` for a dead request) to its driver and recycles the stack.
    fn finish(&mut self, mut actor: Actor, response: Option<Response>) {
        if !actor.co.done() {
            actor.co.force_unwind();
        }
        self.stacks.push(actor.co.into_stack());
        let faulted = actor.faulted;
        let started = actor.started;
        match actor.call {
            Call::Create {
                plan,
                requester,
                attempt,
            } => self.on_create(plan, requester, attempt, response),
            Call::Callback { chain } => self.on_callback(chain, response, faulted),
            Call::Duplicate { .. } => {}
            Call::Sweep { periodic } => {
                // Like cron: the next run an interval after this one, now and then with an
                // overlapping extra run.
                if periodic && self.world.faults_on.get() {
                    let next = self.world.now() + self.rng(|r| r.range(20_000, 90_000));
                    self.at(next, Event::Spawn(Call::Sweep { periodic: true }));
                    if self.rng(|r| r.chance(0.15)) {
                        let extra = next + self.rng(|r| r.range(0, 300));
                        self.at(extra, Event::Spawn(Call::Sweep { periodic: false }));
                    }
                }
                if let Some(response) = response {
                    if response.status == 200 {
                        self.last_sweep = response.json_body();
                    } else if !faulted {
                        self.problems.push(format!(
                            "a sweep without faults answered {}: {}",
                            response.status,
                            String::from_utf8_lossy(&response.body)
                        ));
                    }
                }
            }
            Call::ManualRetry(_) => {}
            Call::Status(id) => {
                if let Some(response) = response {
                    self.observations.push(Observation {
                        started,
                        at: self.world.now(),
                        deposit_id: id,
                        status: response.status,
                        body: response.json_body(),
                    });
                }
            }
        }
    }

    fn on_create(
        &mut self,
        plan: usize,
        requester: usize,
        attempt: u32,
        response: Option<Response>,
    ) {
        let now = self.world.now();
        let retry = |sim: &mut Self, after: u64| {
            let answered = sim.plans[plan].answered[requester];
            let left = &mut sim.plans[plan].attempts_left[requester];
            if *left > 0 && !answered {
                *left -= 1;
                sim.at(
                    now + after,
                    Event::Spawn(Call::Create {
                        plan,
                        requester,
                        attempt: attempt + 1,
                    }),
                );
            }
        };
        let Some(response) = response else {
            let after = self.rng(|r| r.range(1_000, 5_000));
            return retry(self, after);
        };
        let body = response.json_body();
        match response.status {
            200 => {
                let (user, amount) = self.plans[plan].requesters[requester].clone();
                let deposit_id = body["depositId"].as_str().unwrap_or_default().to_string();
                let reference = body["reference"].as_str().unwrap_or_default().to_string();
                if deposit_id.is_empty() || reference.is_empty() {
                    self.problems
                        .push(format!("create answered 200 without an invoice: {body}"));
                    return;
                }
                let first = !self.plans[plan].answered[requester];
                self.plans[plan].answered[requester] = true;
                // A bot that gets an id of its own again forgets it ever applied it.
                if first && self.plans[plan].era == 1 {
                    self.world.bot.borrow_mut().applied.remove(&deposit_id);
                    self.era_starts.insert(deposit_id.clone(), now);
                }
                let shown = Shown {
                    deposit_id,
                    reference,
                    user,
                    amount,
                    era: self.plans[plan].era,
                    alive_until: (self.plans[plan].first_asked[requester].unwrap_or(now)
                        + self.world.config.ttl_ms)
                        .saturating_sub(10_000),
                };
                let new_invoice = !self.shown.iter().any(|s| s.reference == shown.reference);
                if new_invoice {
                    self.shown.push(shown.clone());
                    if first || self.rng(|r| r.chance(0.5)) {
                        self.pay(&shown);
                    }
                }
            }
            409 if body["error"] == "CREATE_IN_PROGRESS" => {
                let after = self.rng(|r| r.range(1_000, 4_000));
                retry(self, after);
            }
            502 | 503 | 500 => {
                let after = self.rng(|r| r.range(1_000, 5_000));
                retry(self, after);
            }
            _ => {}
        }
    }

    /// The user pays (or not) an invoice a bot showed; the gateway then calls back.
    fn pay(&mut self, shown: &Shown) {
        let roll = self.rng(|r| r.below(100));
        let (paid, amount) = match roll {
            0..=64 => (true, shown.amount),
            65..=74 => (true, shown.amount + 1),
            75..=89 => (false, shown.amount),
            _ => return,
        };
        if paid && amount == shown.amount {
            self.paid_shown.insert(shown.reference.clone());
        }
        let when = self.world.now() + self.rng(|r| r.range(1_000, 30_000));
        self.callback_chain(shown, paid, amount, when);
        if paid && self.rng(|r| r.chance(0.2)) {
            let later = when + self.rng(|r| r.range(0, 60_000));
            self.callback_chain(shown, false, amount, later);
        }
    }

    fn callback_chain(&mut self, shown: &Shown, paid: bool, amount: u64, when: u64) {
        let status = if paid { "PAID" } else { "FAILED" };
        let body = json!({
            "orderId": shown.deposit_id,
            "reference": shown.reference,
            "status": status,
            "resultCode": if paid { "00" } else { "02" },
            "duitkuData": {"merchantOrderId": shown.deposit_id, "amount": amount.to_string(),
                           "paymentMethod": "VC"},
        })
        .to_string();
        let chain = self.chains.len();
        let nonce = self
            .rng(|r| r.chance(0.5))
            .then(|| format!("n{}-{chain}", self.world.seed));
        self.chains.push(Chain {
            body,
            nonce,
            deposit_id: shown.deposit_id.clone(),
            paid,
            reference: shown.reference.clone(),
            correct: amount == shown.amount,
            done: false,
            refusals: 0,
            attempts: 0,
            owed: false,
        });
        self.at(when, Event::Spawn(Call::Callback { chain }));
        if self.rng(|r| r.chance(0.3)) {
            let copies = if self.rng(|r| r.chance(0.15)) {
                10
            } else {
                self.rng(|r| r.range(1, 3))
            };
            for _ in 0..copies {
                let at = when + self.rng(|r| r.range(0, 2_000));
                self.at(at, Event::Spawn(Call::Duplicate { chain }));
            }
        }
        if self.rng(|r| r.chance(0.2)) {
            let at = when + self.rng(|r| r.range(0, 120_000));
            self.at(
                at,
                Event::Spawn(Call::ManualRetry(shown.deposit_id.clone())),
            );
        }
        for _ in 0..self.rng(|r| r.range(0, 3)) {
            let at = when + self.rng(|r| r.range(0, 200_000));
            self.at(at, Event::Spawn(Call::Status(shown.deposit_id.clone())));
        }
    }

    fn on_callback(&mut self, chain: usize, response: Option<Response>, faulted: bool) {
        let now = self.world.now();
        let alive_until = self
            .shown
            .iter()
            .find(|s| s.reference == self.chains[chain].reference)
            .map_or(0, |s| s.alive_until);
        let c = &mut self.chains[chain];
        c.attempts += 1;
        match response {
            Some(r) if r.status == 200 => {
                c.done = true;
                c.owed = true;
                return;
            }
            Some(r) if !faulted => {
                // A clean refusal: the gateway believes it and gives up after a few.
                c.refusals += 1;
                c.owed |= now < alive_until;
                let corrupt = r.json_body()["error"] == "CORRUPT_RECORD"
                    && self.corrupted.contains(&c.deposit_id);
                if !self.world.faults_on.get() && r.status >= 500 && !corrupt {
                    self.problems.push(format!(
                        "a callback without faults answered {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ));
                }
            }
            _ => {}
        }
        if c.refusals >= 3 || c.attempts >= 40 {
            let reference = c.reference.clone();
            self.world
                .log(|| format!("-- the gateway gives up reporting {reference}"));
            return;
        }
        let backoff = [5_000u64, 15_000, 30_000, 60_000, 120_000];
        let delay = backoff[(c.attempts as usize - 1).min(backoff.len() - 1)];
        self.at(now + delay, Event::Spawn(Call::Callback { chain }));
    }

    /// Runs the whole scenario: the workload under faults, then healing until nothing is due.
    pub fn run(&mut self) {
        self.run_until_idle();
        self.world.faults_on.set(false);
        let config = self.world.config.clone();
        let step = config.longest_step_ms() + config.lease_ms + 5_000;
        let mut quiet = 0;
        for round in 0..60 {
            self.world.advance(step);
            self.spawn(Call::Sweep { periodic: false });
            self.run_until_idle();
            let owed: Vec<String> = self.owed_ids();
            if round >= 2 {
                for id in &owed {
                    self.spawn(Call::ManualRetry(id.clone()));
                }
                self.run_until_idle();
            }
            let remaining = self.last_sweep["remaining"].as_u64().unwrap_or(1);
            quiet = if owed.is_empty() && remaining == 0 {
                quiet + 1
            } else {
                0
            };
            if quiet >= 2 {
                break;
            }
        }
        for id in self.deposit_ids() {
            self.spawn(Call::Status(id));
        }
        self.run_until_idle();
    }

    /// Every deposit id a bot was shown.
    pub fn deposit_ids(&self) -> BTreeSet<String> {
        self.shown.iter().map(|s| s.deposit_id.clone()).collect()
    }

    /// Invoices paid with the right amount that the app owes: it acknowledged the payment,
    /// or refused its report while the deposit was alive.
    pub fn paid_invoices(&self) -> Vec<&Shown> {
        self.shown
            .iter()
            .filter(|s| {
                self.paid_shown.contains(&s.reference)
                    && self
                        .chains
                        .iter()
                        .any(|c| c.reference == s.reference && c.paid && c.correct && c.owed)
            })
            .collect()
    }

    /// Invoices paid with the right amount, whether or not the app ever heard of it.
    pub fn all_paid_invoices(&self) -> Vec<&Shown> {
        self.shown
            .iter()
            .filter(|s| self.paid_shown.contains(&s.reference))
            .collect()
    }

    /// Deposits that must be credited but are not (yet).
    pub fn owed_ids(&self) -> Vec<String> {
        let bot = self.world.bot.borrow();
        self.paid_invoices()
            .iter()
            .map(|s| s.deposit_id.clone())
            .filter(|id| !self.corrupted.contains(id) && !bot.applied.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

fn describe(call: &Call) -> String {
    match call {
        Call::Create {
            plan,
            requester,
            attempt,
        } => format!("create(plan {plan}, requester {requester}, try {attempt})"),
        Call::Callback { chain } => format!("callback(chain {chain})"),
        Call::Duplicate { chain } => format!("callback(copy of chain {chain})"),
        Call::Sweep { .. } => "sweep".into(),
        Call::ManualRetry(id) => format!("retry-credit({id})"),
        Call::Status(id) => format!("status({id})"),
    }
}
