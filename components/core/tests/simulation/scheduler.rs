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
use serde_json::Value;
use topup_core::http::{Request, Response};
use topup_core::routes;

use crate::gateways::{Gw, Notice};
use crate::platform::{Resume, SimPlatform, Yield};
use crate::world::World;

mod adversary;
mod drivers;

use drivers::describe;
mod faults;
mod observed;

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
    /// A gateway's notification of one payment event.
    Callback {
        /// Index of the callback chain.
        chain: usize,
    },
    /// A copy of a callback sent alongside (a double send or a storm).
    Duplicate {
        /// Index of the callback chain.
        chain: usize,
    },
    /// The adversary's notification: a genuine one replayed, perhaps edited.
    Adversary(Box<Notice>),
    /// `POST /internal/credit-retry`; a periodic one schedules the next when it ends.
    Sweep {
        /// Run by the scheduler (cron), not an extra overlapping one.
        periodic: bool,
    },
    /// `POST /deposit/retry-credit`.
    ManualRetry(String),
    /// `GET /deposit/status`.
    Status(String),
    /// An operator at the console.
    Console(Operator),
}

/// What an operator does at the console.
#[derive(Debug, Clone)]
pub enum Operator {
    /// `POST /admin/action/resend` of a deposit.
    Resend(String),
    /// `POST /admin/action/refund-handled` of a deposit's invoice.
    RefundHandled {
        /// The deposit.
        id: String,
        /// The invoice said to be refunded.
        reference: String,
    },
    /// `POST /admin/action/review-closed` of a deposit's invoice.
    ReviewClosed {
        /// The deposit.
        id: String,
        /// The invoice whose payment of the wrong amount was settled by hand.
        reference: String,
    },
    /// `POST /admin/action/reconcile` of a deposit.
    Reconcile(String),
    /// `POST /admin/action/bulk-resend` of a filter's first page.
    BulkResend(&'static str),
    /// `GET /admin/deposits` (a page, perhaps filtered).
    List(&'static str),
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
    /// The gateway it is made at.
    pub gateway: Gw,
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
    /// The gateway.
    pub gateway: Gw,
}

/// A payment event and the gateway's attempts to report it.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The notification (the Central PG signs each attempt of its body when sending it).
    pub notice: Notice,
    /// Its `X-Nonce`, if the Central PG sends one (the same on every retry).
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
    /// The buyer pays (or a payment is denied) at the gateway.
    Pay(Payment),
    /// The adversary strikes.
    Adversary,
    /// A gateway is taken out of `gateways_enabled`, put back, or loses its credentials.
    Toggle,
}

/// What a buyer does at the gateway.
#[derive(Debug, Clone)]
pub struct Payment {
    /// The invoice.
    pub shown: Shown,
    /// What is paid (`None`: the payment is denied).
    pub amount: Option<u64>,
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
    /// Invoices an operator marked refunded (answered 200).
    pub refunds_handled: BTreeSet<(String, String)>,
    /// Invoices whose review an operator closed (answered 200).
    pub reviews_closed: BTreeSet<(String, String)>,
    /// Nonces named only by a record a fault corrupted, and that record's key.
    lost_nonces: BTreeMap<String, String>,
    /// Last sweep answer.
    pub last_sweep: Value,
    /// Problems found while running (answers the contract forbids).
    pub problems: Vec<String>,
    actors: Vec<Option<Actor>>,
    events: BinaryHeap<Reverse<(u64, u64)>>,
    event_bodies: BTreeMap<u64, Event>,
    next_event: u64,
    stacks: Vec<DefaultStack>,
    /// When an id's second era began.
    pub era_starts: BTreeMap<String, u64>,
    /// Creates of a first era running now: (plan, requester, attempt) to their id.
    first_era_creates: BTreeMap<(usize, usize, u32), String>,
    /// When a create of an id's first era last started or answered.
    first_era_active: BTreeMap<String, u64>,
    /// Every notification a gateway sent, as the adversary captured it.
    pub captured: Vec<Notice>,
    /// Gateways taken out of `gateways_enabled`, and whether their credentials were taken too.
    pub retired: BTreeMap<Gw, bool>,
}

const STACK_SIZE: usize = 256 * 1024;

/// The route a gateway's notifications go to.
fn route_of(gw: Gw) -> fn(&Request, &topup_core::platform::Platform) -> Response {
    match gw {
        Gw::Central => routes::callback::handle,
        Gw::Duitku => routes::gateway_callback::duitku,
        Gw::Midtrans => routes::gateway_callback::midtrans,
        Gw::Xendit => routes::gateway_callback::xendit,
        Gw::Tripay => routes::gateway_callback::tripay,
    }
}

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
            refunds_handled: BTreeSet::new(),
            reviews_closed: BTreeSet::new(),
            lost_nonces: BTreeMap::new(),
            last_sweep: Value::Null,
            problems: Vec::new(),
            actors: Vec::new(),
            events: BinaryHeap::new(),
            event_bodies: BTreeMap::new(),
            next_event: 0,
            stacks: Vec::new(),
            era_starts: BTreeMap::new(),
            first_era_creates: BTreeMap::new(),
            first_era_active: BTreeMap::new(),
            captured: Vec::new(),
            retired: BTreeMap::new(),
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

    /// For the first create of a plan that uses an id again: when the id's first deposit is
    /// surely over (a lifetime and a margin after its last first-era create started or
    /// answered; a minute from now while one is still running).
    fn first_era_over_at(&self, plan: usize, requester: usize) -> Option<u64> {
        let p = &self.plans[plan];
        let id = p.id.as_ref()?;
        if p.era != 1 || p.first_asked[requester].is_some() {
            return None;
        }
        let now = self.world.now();
        if self.first_era_creates.values().any(|running| running == id) {
            return Some(now + 60_000);
        }
        let last = *self.first_era_active.get(id)?;
        Some(last + self.world.config.ttl_ms + 120_000)
    }

    /// Notes that a create answered (or died): its first era, if any, was active until now.
    pub(super) fn create_ended(&mut self, plan: usize, requester: usize, attempt: u32) {
        if let Some(id) = self.first_era_creates.remove(&(plan, requester, attempt)) {
            self.first_era_active.insert(id, self.world.now());
        }
    }

    fn spawn(&mut self, call: Call) {
        if let Call::Create {
            plan,
            requester,
            attempt,
        } = call
        {
            let now = self.world.now();
            if let Some(later) = self.first_era_over_at(plan, requester) {
                if now < later {
                    // The id is used again only once its first deposit is over: a first-era
                    // create stalled by clock jumps may have begun that deposit late.
                    self.at(later, Event::Spawn(call));
                    return;
                }
            }
            let id = self.plans[plan].id.clone();
            if let (0, Some(id)) = (self.plans[plan].era, id) {
                self.first_era_active.insert(id.clone(), now);
                self.first_era_creates
                    .insert((plan, requester, attempt), id);
            }
            self.plans[plan].first_asked[requester].get_or_insert(now);
        }
        let request = self.request_for(&call);
        let Some(request) = request else { return };
        let handler: fn(&Request, &topup_core::platform::Platform) -> Response = match &call {
            Call::Create { .. } => routes::create::handle,
            Call::Callback { chain } | Call::Duplicate { chain } => {
                route_of(self.chains[*chain].notice.gw)
            }
            Call::Adversary(notice) => route_of(notice.gw),
            Call::Sweep { .. } => routes::sweep::handle,
            Call::ManualRetry(_) => routes::manual_retry::handle,
            Call::Status(_) => routes::status::handle,
            Call::Console(Operator::List(_)) => routes::admin::handle,
            Call::Console(_) => routes::admin_action::handle,
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
                    self.restore_gateways();
                }
                Event::Pay(payment) => self.on_pay(payment),
                Event::Adversary => self.strike(),
                Event::Toggle => self.toggle_gateway(),
            }
        }
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
            Call::Adversary(notice) => self.on_adversary(&notice, response),
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
            Call::Console(operator) => self.on_console(&operator, response, faulted),
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

    /// Runs the whole scenario: the workload under faults, then healing until nothing is due.
    pub fn run(&mut self) {
        self.run_until_idle();
        self.world.faults_on.set(false);
        self.restore_gateways();
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
                    // Now and then the operator resends it from the console instead.
                    let call = if self.world.operator_rng.borrow_mut().chance(0.3) {
                        Call::Console(Operator::Resend(id.clone()))
                    } else {
                        Call::ManualRetry(id.clone())
                    };
                    self.spawn(call);
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
        // The operator marks some invoices refunded (only a second payment of a credited
        // deposit can be; the others are refused and change nothing).
        // Those a status read showed as due first, then any invoice.
        let due = self.observations.iter().flat_map(|o| {
            o.body["refundsDue"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["reference"].as_str())
                .map(|r| (o.deposit_id.clone(), r.to_string()))
        });
        let mut invoices: Vec<(String, String)> = due
            .chain(
                self.shown
                    .iter()
                    .map(|s| (s.deposit_id.clone(), s.reference.clone())),
            )
            .collect();
        invoices.dedup();
        for (id, reference) in invoices {
            if self.world.operator_rng.borrow_mut().chance(0.5) {
                self.spawn(Call::Console(Operator::RefundHandled { id, reference }));
            }
        }
        // And closes some reviews a status read showed.
        let mut reviews: Vec<(String, String)> = self
            .observations
            .iter()
            .flat_map(|o| {
                o.body["reviews"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["reference"].as_str())
                    .map(|r| (o.deposit_id.clone(), r.to_string()))
            })
            .collect();
        reviews.dedup();
        for (id, reference) in reviews {
            if self.world.operator_rng.borrow_mut().chance(0.5) {
                self.spawn(Call::Console(Operator::ReviewClosed { id, reference }));
            }
        }
        self.run_until_idle();
        for id in self.deposit_ids() {
            self.spawn(Call::Status(id));
        }
        self.run_until_idle();
    }

    /// After [`Self::run`] (and its invariants): one nonce lifetime later and the sweeps
    /// that follow, every `nonce:` key left must be named by a record still in the store
    /// (it leaves with its deposit); any other is garbage nothing will ever remove.
    pub fn leftover_nonces(&mut self) -> Vec<String> {
        let config = self.world.config.clone();
        let nonce_ttl_ms = config
            .variables
            .iter()
            .find(|(name, _)| *name == "nonce_ttl_seconds")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .map_or(600_000, |s| s * 1000);
        self.world.advance(nonce_ttl_ms + config.longest_step_ms());
        for _ in 0..10 {
            self.spawn(Call::Sweep { periodic: false });
            self.run_until_idle();
            if self.last_sweep["remaining"].as_u64() == Some(0) {
                break;
            }
            self.world.advance(config.longest_step_ms());
        }
        let records = self.world.records.snapshot();
        self.world
            .claims
            .snapshot()
            .into_keys()
            .filter_map(|key| key.strip_prefix("nonce:").map(str::to_string))
            .filter(|nonce| {
                let named = format!("\"nonce\":\"{nonce}\"");
                !records
                    .values()
                    .any(|v| String::from_utf8_lossy(v).contains(&named))
            })
            // A corrupted record is held for the operator with what it named.
            .filter(|nonce| {
                self.lost_nonces.get(nonce).is_none_or(|key| {
                    records.get(key).map(Vec::as_slice) != Some(faults::CORRUPT_RECORD)
                })
            })
            .collect()
    }
}
