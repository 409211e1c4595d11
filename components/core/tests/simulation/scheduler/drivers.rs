//! The drivers: what bots, buyers, the gateways and the operator do, and what they make of
//! each answer.

use serde_json::json;

use crate::gateways::{self, notice_of, Gw, Notice, TxnState};
use crate::world::{bot_of, BOTS, EPOCH, OPERATOR_TOKEN, SECRET};

use super::*;

/// How many captured notifications the adversary keeps (the latest).
const CAPTURED_KEPT: usize = 64;

impl Sim {
    /// A gateway for a new deposit: the Central PG about half the time.
    fn pick_gateway(&self) -> Gw {
        let gateways = &self.world.config.gateways;
        if self.rng(|r| r.chance(0.45)) {
            return Gw::Central;
        }
        gateways[self.rng(|r| r.below(gateways.len() as u64)) as usize]
    }

    /// A user of a bot picked at random: `default`'s as `u1`, a named bot's as `shop:u1`.
    fn user_of_some_bot(&self, name: String) -> String {
        let pick = self.world.bots_rng.borrow_mut().below(BOTS.len() as u64);
        match &BOTS[pick as usize] {
            bot if bot.id == "default" => name,
            bot => format!("{}:{name}", bot.id),
        }
    }

    /// `Authorization` of the bot that made deposit `id` (as last shown), else `default`'s.
    fn bearer_of_deposit(&self, id: &str) -> String {
        let user = self
            .shown
            .iter()
            .rev()
            .find(|s| s.deposit_id == id)
            .map_or("", |s| s.user.as_str());
        format!("Bearer {}", bot_of(user).secret)
    }

    fn add_plan(
        &mut self,
        id: Option<String>,
        requesters: Vec<(String, u64)>,
        gateway: Gw,
        era: u32,
    ) -> usize {
        let n = requesters.len();
        self.plans.push(Plan {
            id,
            requesters,
            attempts_left: vec![4; n],
            answered: vec![false; n],
            first_asked: vec![None; n],
            era,
            gateway,
        });
        self.plans.len() - 1
    }

    fn ask(&mut self, plan: usize, requester: usize, at: u64) {
        self.at(
            at,
            Event::Spawn(Call::Create {
                plan,
                requester,
                attempt: 1,
            }),
        );
    }

    pub(super) fn plan_workload(&mut self) {
        let deposits = self.rng(|r| r.range(2, 5)) as usize;
        let mut last = EPOCH;
        let amounts = [5_000u64, 10_000, 25_000];
        for k in 0..deposits {
            let chosen = self.rng(|r| r.chance(0.8));
            let amount = amounts[self.rng(|r| r.below(3)) as usize];
            let mut requesters = vec![(self.user_of_some_bot(format!("u{k}")), amount)];
            if chosen && self.rng(|r| r.chance(0.2)) {
                // Another user, maybe of another bot, wants the same id.
                requesters.push((self.user_of_some_bot(format!("x{k}")), amount + 1_000));
            }
            let gateway = self.pick_gateway();
            let n = requesters.len();
            let plan = self.add_plan(chosen.then(|| format!("D{k}")), requesters, gateway, 0);
            let start = EPOCH + self.rng(|r| r.range(0, 20_000));
            self.ask(plan, 0, start);
            // A bot retrying on its own timeout while the first create is still running.
            if self.rng(|r| r.chance(0.3)) {
                let again = start + self.rng(|r| r.range(0, 1_500));
                self.ask(plan, 0, again);
            }
            if n > 1 {
                let other = start + self.rng(|r| r.range(0, 3_000));
                self.ask(plan, 1, other);
            }
            last = last.max(start);
        }
        // Two Duitku deposits whose amount and id, written together, read the same: Duitku's
        // signature cannot tell their notices apart.
        if self.world.config.gateways.contains(&Gw::Duitku) && self.rng(|r| r.chance(0.25)) {
            let d = self.rng(|r| r.range(1, 9));
            let first = self.add_plan(
                Some(format!("{d}2")),
                vec![("n1".into(), 5_000)],
                Gw::Duitku,
                0,
            );
            let second = self.add_plan(
                Some("2".into()),
                vec![("n2".into(), 50_000 + d)],
                Gw::Duitku,
                0,
            );
            let at = EPOCH + self.rng(|r| r.range(0, 20_000));
            self.ask(first, 0, at);
            self.ask(second, 0, at + self.rng(|r| r.range(0, 2_000)));
            last = last.max(at);
        }
        // An id used again once its first deposit has expired: by another user, or by the same
        // user for the same amount (whose old notices then fit the new deposit).
        if self.rng(|r| r.chance(0.25)) {
            if let Some(k) = (0..self.plans.len()).find(|&k| {
                self.plans[k]
                    .id
                    .as_ref()
                    .is_some_and(|id| id.starts_with('D'))
            }) {
                let id = self.plans[k].id.clone();
                let requester = if self.rng(|r| r.chance(0.5)) {
                    self.plans[k].requesters[0].clone()
                } else {
                    (self.user_of_some_bot(format!("r{k}")), 7_000)
                };
                let gateway = if self.rng(|r| r.chance(0.6)) {
                    self.plans[k].gateway
                } else {
                    self.pick_gateway()
                };
                let plan = self.add_plan(id, vec![requester], gateway, 1);
                let reuse = last + self.world.config.ttl_ms + self.rng(|r| r.range(1_000, 120_000));
                self.ask(plan, 0, reuse);
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
        for _ in 0..self.rng(|r| r.range(0, 8)) {
            let when = EPOCH + self.rng(|r| r.range(5_000, end - EPOCH));
            self.at(when, Event::Adversary);
        }
        if self.world.config.gateways.len() > 1 {
            for _ in 0..self.rng(|r| r.range(0, 3)) {
                let when = EPOCH + self.rng(|r| r.range(5_000, end - EPOCH));
                self.at(when, Event::Toggle);
            }
        }
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
                let mut body = json!({"userId": user, "amount": amount,
                    "gateway": plan.gateway.name(), "email": "buyer@example.com"});
                if let Some(id) = &plan.id {
                    body["depositId"] = json!(id);
                }
                // Each bot creates with its own key.
                Request::new("POST", "/deposit/create")
                    .with_header("authorization", &format!("Bearer {}", bot_of(user).secret))
                    .with_header("content-type", "application/json")
                    .with_body(body.to_string())
            }
            Call::Callback { chain } | Call::Duplicate { chain } => {
                let chain = &self.chains[*chain];
                let request = match chain.notice.gw {
                    // The PG signs each attempt as it sends it.
                    Gw::Central => gateways::central_request(
                        &chain.notice.request.body,
                        chain.nonce.as_deref(),
                        self.world.now(),
                        self.world.config.rules.pg_timestamped,
                    ),
                    _ => chain.notice.request.clone(),
                };
                if self.captured.len() >= CAPTURED_KEPT {
                    self.captured.remove(0);
                }
                self.captured.push(Notice {
                    gw: chain.notice.gw,
                    request: request.clone(),
                });
                request
            }
            Call::Adversary(notice) => notice.request.clone(),
            Call::Sweep { .. } => {
                Request::new("POST", "/internal/credit-retry").with_header("authorization", &bearer)
            }
            Call::ManualRetry(id) => {
                Request::new("POST", &format!("/deposit/retry-credit?depositId={id}"))
                    .with_header("authorization", &self.bearer_of_deposit(id))
            }
            Call::Status(id) => Request::new("GET", &format!("/deposit/status?depositId={id}"))
                .with_header("authorization", &self.bearer_of_deposit(id)),
            Call::Console(operator) => {
                let token = format!("Bearer {OPERATOR_TOKEN}");
                match operator {
                    Operator::Resend(id) => {
                        Request::new("POST", &format!("/admin/action/resend?depositId={id}"))
                            .with_header("authorization", &token)
                    }
                    Operator::RefundHandled { id, reference } => Request::new(
                        "POST",
                        &format!("/admin/action/refund-handled?depositId={id}"),
                    )
                    .with_header("authorization", &token)
                    .with_header("content-type", "application/json")
                    .with_body(
                        json!({"reference": reference, "reason": "refunded by the operator"})
                            .to_string(),
                    ),
                    Operator::ReviewClosed { id, reference } => Request::new(
                        "POST",
                        &format!("/admin/action/review-closed?depositId={id}"),
                    )
                    .with_header("authorization", &token)
                    .with_header("content-type", "application/json")
                    .with_body(
                        json!({"reference": reference, "reason": "settled by the operator"})
                            .to_string(),
                    ),
                    Operator::Reconcile(id) => {
                        Request::new("POST", &format!("/admin/action/reconcile?depositId={id}"))
                            .with_header("authorization", &token)
                    }
                    Operator::BulkResend(query) => {
                        Request::new("POST", &format!("/admin/action/bulk-resend?{query}"))
                            .with_header("authorization", &token)
                    }
                    Operator::List(query) => {
                        Request::new("GET", &format!("/admin/deposits?{query}"))
                            .with_header("authorization", &token)
                    }
                }
            }
        })
    }

    /// An operator's answer: a refund marked or a review closed is remembered (its deposit
    /// may then end); a 500 without a fault behind it is a problem.
    pub(super) fn on_console(
        &mut self,
        operator: &Operator,
        response: Option<Response>,
        faulted: bool,
    ) {
        let Some(response) = response else { return };
        match (operator, response.status) {
            (Operator::RefundHandled { id, reference }, 200) => {
                self.refunds_handled.insert((id.clone(), reference.clone()));
            }
            (Operator::ReviewClosed { id, reference }, 200) => {
                self.reviews_closed.insert((id.clone(), reference.clone()));
            }
            _ => {}
        }
        let corrupted = match operator {
            Operator::Resend(id)
            | Operator::Reconcile(id)
            | Operator::RefundHandled { id, .. }
            | Operator::ReviewClosed { id, .. } => self.corrupted.contains(id),
            Operator::List(_) | Operator::BulkResend(_) => !self.corrupted.is_empty(),
        };
        if response.status == 500 && !faulted && !corrupted {
            self.problems.push(format!(
                "an operator's {operator:?} without faults answered 500: {}",
                String::from_utf8_lossy(&response.body)
            ));
        }
    }

    pub(super) fn on_create(
        &mut self,
        plan: usize,
        requester: usize,
        attempt: u32,
        response: Option<Response>,
    ) {
        self.create_ended(plan, requester, attempt);
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
                // The id's earlier deposit, still there, answered for itself: this plan's
                // create is a repeat of it, not a new deposit of the id.
                if let Some(earlier) = self
                    .shown
                    .iter()
                    .find(|s| s.reference == reference && body["replayed"] == true)
                {
                    self.plans[plan].era = earlier.era;
                    return;
                }
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
                    gateway: self.plans[plan].gateway,
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

    /// The buyer pays (or fails to pay) an invoice a bot showed, at its gateway.
    pub(super) fn pay(&mut self, shown: &Shown) {
        let roll = self.rng(|r| r.below(100));
        // Only the Central PG and Xendit report an amount other than the invoice's.
        let wrong = matches!(shown.gateway, Gw::Central | Gw::Xendit);
        let amount = match roll {
            0..=64 => Some(shown.amount),
            65..=74 if wrong => Some(shown.amount + 1),
            65..=74 => Some(shown.amount),
            75..=89 => None,
            _ => return,
        };
        let when = self.world.now() + self.rng(|r| r.range(1_000, 30_000));
        let payment = Payment {
            shown: shown.clone(),
            amount,
        };
        self.at(when, Event::Pay(payment));
        // A denied payment tried again (Midtrans keeps its page payable).
        if amount.is_none() && shown.gateway == Gw::Midtrans && self.rng(|r| r.chance(0.5)) {
            let later = when + self.rng(|r| r.range(1_000, 60_000));
            let retried = Payment {
                shown: shown.clone(),
                amount: Some(shown.amount),
            };
            self.at(later, Event::Pay(retried));
        }
    }

    /// A payment reaches the gateway: its ledger changes, and it notifies the app (or its
    /// notices are lost: only reconciliation can then find the payment).
    pub(super) fn on_pay(&mut self, payment: Payment) {
        let now = self.world.now();
        let reference = &payment.shown.reference;
        let changed = {
            let mut ledger = self.world.ledger.borrow_mut();
            match payment.amount {
                Some(amount) => ledger.pay(reference, amount, now),
                None => ledger.deny(reference, now),
            }
        };
        let Some(txn) = self.world.ledger.borrow().get(reference).cloned() else {
            return;
        };
        self.world.log(|| {
            format!(
                "-- the buyer {} {reference} at {}{}",
                if payment.amount.is_some() {
                    "pays"
                } else {
                    "fails to pay"
                },
                txn.gw.name(),
                if changed {
                    ""
                } else {
                    " (too late: nothing happens)"
                }
            )
        });
        if !changed {
            return;
        }
        let rules = self.world.config.rules;
        let lost = txn.gw != Gw::Central && self.rng(|r| r.chance(0.25));
        if !lost {
            self.callback_chain(&payment.shown, notice_of(&txn, &rules), &txn, now);
        }
        // A late notice out of order: a failure after the payment, or a stale pending.
        if txn.state == TxnState::Paid && self.rng(|r| r.chance(0.2)) {
            let mut stale = txn.clone();
            stale.state = match txn.gw {
                Gw::Central | Gw::Duitku | Gw::Tripay => TxnState::Denied,
                Gw::Midtrans | Gw::Xendit => TxnState::Pending,
            };
            let later = now + self.rng(|r| r.range(0, 60_000));
            self.callback_chain(&payment.shown, notice_of(&stale, &rules), &stale, later);
        }
    }

    pub(super) fn callback_chain(
        &mut self,
        shown: &Shown,
        notice: Notice,
        txn: &crate::gateways::Txn,
        when: u64,
    ) {
        let chain = self.chains.len();
        let nonce = (notice.gw == Gw::Central
            && (self.world.config.rules.pg_timestamped || self.rng(|r| r.chance(0.5))))
        .then(|| format!("n{}-{chain}", self.world.seed));
        self.chains.push(Chain {
            notice,
            nonce,
            deposit_id: shown.deposit_id.clone(),
            paid: txn.state == TxnState::Paid,
            reference: shown.reference.clone(),
            correct: txn.paid == Some(txn.billed),
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
        // The operator, from a stream of its own: resends, marks this invoice refunded
        // (whether or not a refund is due), lists.
        let world = self.world.clone();
        let operator = |f: &mut dyn FnMut(&mut crate::rng::Rng) -> u64| {
            f(&mut world.operator_rng.borrow_mut())
        };
        let mut acts = Vec::new();
        if operator(&mut |r| u64::from(r.chance(0.15))) == 1 {
            acts.push(Operator::Resend(shown.deposit_id.clone()));
        }
        if operator(&mut |r| u64::from(r.chance(0.15))) == 1 {
            acts.push(Operator::RefundHandled {
                id: shown.deposit_id.clone(),
                reference: shown.reference.clone(),
            });
        }
        if operator(&mut |r| u64::from(r.chance(0.1))) == 1 {
            acts.push(Operator::ReviewClosed {
                id: shown.deposit_id.clone(),
                reference: shown.reference.clone(),
            });
        }
        if operator(&mut |r| u64::from(r.chance(0.1))) == 1 {
            acts.push(Operator::Reconcile(shown.deposit_id.clone()));
        }
        if operator(&mut |r| u64::from(r.chance(0.03))) == 1 {
            acts.push(Operator::BulkResend("status=attention"));
        }
        if operator(&mut |r| u64::from(r.chance(0.05))) == 1 {
            const QUERIES: [&str; 4] = [
                "",
                "status=owed",
                "status=attention&limit=5",
                "status=refund_due",
            ];
            let pick = operator(&mut |r| r.below(QUERIES.len() as u64));
            acts.push(Operator::List(QUERIES[pick as usize]));
        }
        for act in acts {
            let at = when + operator(&mut |r| r.range(0, 300_000));
            self.at(at, Event::Spawn(Call::Console(act)));
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
                // A clean refusal: the gateway believes it and gives up after a few. The app
                // owes what it refused while the deposit was alive, but for a stale timestamp
                // (this attempt took too long to arrive): that asks for a fresh one.
                c.refusals += 1;
                c.owed |= now < alive_until && r.json_body()["error"] != "INVALID_TIMESTAMP";
                let corrupt = r.json_body()["error"] == "CORRUPT_RECORD"
                    && self.corrupted.contains(&c.deposit_id);
                // A notice its gateway's status API could not confirm is a 502 by design.
                let unconfirmed = r.json_body()["error"] == "GATEWAY_UNCONFIRMED";
                if !self.world.faults_on.get() && r.status >= 500 && !corrupt && !unconfirmed {
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

    /// A gateway is taken out of `gateways_enabled` (sometimes with its credentials), or put
    /// back as it was.
    pub(super) fn toggle_gateway(&mut self) {
        let direct: Vec<Gw> = self
            .world
            .config
            .gateways
            .iter()
            .copied()
            .filter(|g| *g != Gw::Central)
            .collect();
        if direct.is_empty() {
            return;
        }
        let gw = direct[self.rng(|r| r.below(direct.len() as u64)) as usize];
        if self.retired.remove(&gw).is_none() {
            let credentials = self.rng(|r| r.chance(0.3));
            self.retired.insert(gw, credentials);
        }
        self.apply_gateways();
    }

    /// Every gateway back as the run's configuration has it.
    pub(super) fn restore_gateways(&mut self) {
        if !self.retired.is_empty() {
            self.retired.clear();
            self.apply_gateways();
        }
    }

    fn apply_gateways(&mut self) {
        let config = &self.world.config;
        let enabled: Vec<&str> = config
            .gateways
            .iter()
            .filter(|g| !self.retired.contains_key(g))
            .map(|g| g.name())
            .collect();
        let mut variables = config
            .variables()
            .with("gateways_enabled", &enabled.join(","));
        for (gw, credentials) in &self.retired {
            if *credentials {
                for name in gw.credentials() {
                    variables = variables.with(name, "");
                }
            }
        }
        self.world
            .log(|| format!("-- gateways: {enabled:?}, retired {:?}", self.retired));
        *self.world.variables.borrow_mut() = variables;
    }
}

/// A short description of a call for the trace.
pub(super) fn describe(call: &Call) -> String {
    match call {
        Call::Create {
            plan,
            requester,
            attempt,
        } => format!("create(plan {plan}, requester {requester}, try {attempt})"),
        Call::Callback { chain } => format!("callback(chain {chain})"),
        Call::Duplicate { chain } => format!("callback(copy of chain {chain})"),
        Call::Adversary(notice) => format!("adversary({})", notice.gw.name()),
        Call::Sweep { .. } => "sweep".into(),
        Call::ManualRetry(id) => format!("retry-credit({id})"),
        Call::Status(id) => format!("status({id})"),
        Call::Console(operator) => format!("console({operator:?})"),
    }
}
