//! The drivers: what bots, users, the gateway and the operator do, and what they make of
//! each answer.

use serde_json::json;
use topup_core::config::Secret;
use topup_core::signature::sign;

use crate::world::{EPOCH, SECRET};

use super::*;

impl Sim {
    pub(super) fn plan_workload(&mut self) {
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

    pub(super) fn request_for(&mut self, call: &Call) -> Option<Request> {
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

    pub(super) fn on_create(
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
                // Another user's deposit of this id was shown and its life has ended: the app
                // removed it and this create is a new deposit of the id (allowed), not a second
                // invoice of that one.
                let era = self.plans[plan].era;
                let reused = first
                    && era == 0
                    && self.shown.iter().any(|s| {
                        s.deposit_id == deposit_id
                            && s.era == 0
                            && (s.user != user || s.amount != amount)
                            && s.alive_until <= now
                    });
                if reused {
                    self.plans[plan].era = 1;
                }
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
    pub(super) fn pay(&mut self, shown: &Shown) {
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

    pub(super) fn callback_chain(&mut self, shown: &Shown, paid: bool, amount: u64, when: u64) {
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

    pub(super) fn on_callback(&mut self, chain: usize, response: Option<Response>, faulted: bool) {
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
}

pub(super) fn describe(call: &Call) -> String {
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
