//! What must hold at the end of every run, whatever the faults were.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::scheduler::Sim;

/// A credit call's body, as the bot read it.
struct Credit {
    deposit_id: String,
    user: String,
    amount: u64,
    reference: String,
}

fn credit(body: &[u8]) -> Option<Credit> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some(Credit {
        deposit_id: v["depositId"].as_str()?.to_string(),
        user: v["userId"].as_str()?.to_string(),
        amount: v["amount"].as_u64()?,
        reference: v["reference"].as_str()?.to_string(),
    })
}

/// Checks every invariant; returns how many checks were made, or what broke.
pub fn check(sim: &Sim) -> Result<u64, Vec<String>> {
    let mut broken: Vec<String> = sim.problems.clone();
    let mut checks = 0u64;
    let bot = sim.world.bot.borrow();
    broken.extend(bot.violations.iter().cloned());
    let era_of = |id: &str, at: u64| u32::from(sim.era_starts.get(id).is_some_and(|t| at >= *t));

    // Nothing is credited that was not paid in full, and nothing to anyone else.
    let paid = sim.all_paid_invoices();
    let matches_paid = |c: &Credit| {
        paid.iter().any(|s| {
            s.deposit_id == c.deposit_id
                && s.reference == c.reference
                && s.user == c.user
                && s.amount == c.amount
        })
    };
    for (key, deliveries) in &bot.deliveries {
        let mut bodies: BTreeMap<String, &Vec<u8>> = BTreeMap::new();
        for delivery in deliveries {
            checks += 2;
            match credit(&delivery.body) {
                Some(c) if matches_paid(&c) => {}
                _ => broken.push(format!(
                    "credit sent for {key} that no paid invoice justifies: {}",
                    String::from_utf8_lossy(&delivery.body)
                )),
            }
            // Every resend of one deposit (one era of its id) carries the same bytes.
            let era = credit(&delivery.body)
                .map(|c| {
                    sim.shown
                        .iter()
                        .find(|s| s.reference == c.reference)
                        .map_or(c.user, |s| s.era.to_string())
                })
                .unwrap_or_default();
            match bodies.get(&era) {
                Some(first) if **first != delivery.body => broken.push(format!(
                    "two different credit bodies for {key}: {} then {}",
                    String::from_utf8_lossy(first),
                    String::from_utf8_lossy(&delivery.body)
                )),
                Some(_) => {}
                None => {
                    bodies.insert(era, &delivery.body);
                }
            }
        }
    }

    // Every deposit paid in full is credited, to the invoice's own user and amount.
    let owed = sim.paid_invoices();
    let mut units: BTreeMap<(String, u32), Vec<&crate::scheduler::Shown>> = BTreeMap::new();
    for s in &owed {
        units
            .entry((s.deposit_id.clone(), s.era))
            .or_default()
            .push(s);
    }
    for ((id, era), invoices) in &units {
        checks += 1;
        if sim.corrupted.contains(id) {
            continue;
        }
        let applied = bot.history.iter().find(|(key, body, _)| {
            key == id
                && credit(body).is_some_and(|c| {
                    invoices.iter().any(|s| {
                        s.reference == c.reference && s.user == c.user && s.amount == c.amount
                    })
                })
        });
        if applied.is_none() {
            let seen: Vec<String> = bot
                .history
                .iter()
                .filter(|(key, _, _)| key == id)
                .map(|(_, body, at)| {
                    format!(
                        "+{} ms {}",
                        at - crate::world::EPOCH,
                        String::from_utf8_lossy(body)
                    )
                })
                .collect();
            broken.push(format!(
                "{id} (era {era}) was paid ({}) and never credited; the bot applied: {seen:?}",
                invoices
                    .iter()
                    .map(|s| s.reference.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }

    // Once an id is used again, nothing of its first deposit is applied any more.
    for (key, body, at) in &bot.history {
        checks += 1;
        if era_of(key, *at) == 1 {
            let late = credit(body).is_some_and(|c| {
                paid.iter()
                    .any(|s| s.reference == c.reference && s.era == 0)
            });
            if late {
                broken.push(format!(
                    "{key}: a credit of its first deposit arrived after the id was used again"
                ));
            }
        }
    }

    // PAID never goes back, and neither does `credited`: a read that starts after another
    // answered PAID (credited) must say so too.
    let mut observations = sim.observations.clone();
    observations.sort_by_key(|o| o.at);
    // One deposit as the app reports it: a reused id has another creation time.
    let unit = |o: &crate::scheduler::Observation| {
        (
            o.deposit_id.clone(),
            o.body["createdAt"].as_u64().unwrap_or_default(),
        )
    };
    let mut first_paid: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut first_credited: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for o in observations.iter().filter(|o| o.status == 200) {
        if o.body["status"] == "PAID" {
            first_paid.entry(unit(o)).or_insert(o.at);
        }
        if o.body["credited"] == true {
            first_credited.entry(unit(o)).or_insert(o.at);
        }
    }
    for o in observations.iter().filter(|o| o.status == 200) {
        checks += 2;
        let key = unit(o);
        if let Some(at) = first_paid.get(&key).filter(|at| o.started > **at) {
            if o.body["status"] != "PAID" {
                broken.push(format!(
                    "{} read {} at +{} ms after PAID at +{} ms",
                    o.deposit_id,
                    o.body["status"],
                    o.at - crate::world::EPOCH,
                    at - crate::world::EPOCH
                ));
            }
        }
        if let Some(at) = first_credited.get(&key).filter(|at| o.started > **at) {
            if o.body["credited"] != true {
                broken.push(format!(
                    "{} read credited:false at +{} ms after credited:true at +{} ms",
                    o.deposit_id,
                    o.at - crate::world::EPOCH,
                    at - crate::world::EPOCH
                ));
            }
        }
    }

    // What is owed to a human stays visible: refunds due and reviews.
    let last_view = |id: &str| {
        observations
            .iter()
            .rev()
            .find(|o| o.deposit_id == id)
            .map(|o| (o.status, o.body.clone()))
    };
    for ((id, era), invoices) in &units {
        let final_era = era_of(id, u64::MAX);
        if *era != final_era || sim.corrupted.contains(id) || invoices.len() < 2 {
            continue;
        }
        checks += 1;
        match last_view(id) {
            Some((200, view)) => {
                let credited = view["reference"].as_str().unwrap_or_default().to_string();
                let listed: Vec<&str> = view["refundsDue"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|r| r["reference"].as_str()).collect())
                    .unwrap_or_default();
                for s in invoices.iter().filter(|s| s.reference != credited) {
                    if !listed.contains(&s.reference.as_str()) {
                        broken.push(format!(
                            "{id}: second paid invoice {} is not listed in refundsDue: {view}",
                            s.reference
                        ));
                    }
                }
            }
            // Every payment but the credited one marked refunded: it may have ended since.
            _ if invoices
                .iter()
                .filter(|s| {
                    sim.refunds_handled
                        .contains(&(id.clone(), s.reference.clone()))
                })
                .count()
                + 1
                >= invoices.len() => {}
            other => broken.push(format!(
                "{id} owes a refund but its record is gone: {other:?}"
            )),
        }
    }
    for shown in sim.wrongly_paid_invoices() {
        let id = &shown.deposit_id;
        if shown.era != era_of(id, u64::MAX) || sim.corrupted.contains(id) {
            continue;
        }
        checks += 1;
        match last_view(id) {
            Some((200, view)) => {
                // A human must see it: as a review, or listed for a refund.
                let has_review = !view["review"].is_null()
                    || view["reviews"].as_array().is_some_and(|r| !r.is_empty())
                    || view["refundsDue"].as_array().is_some_and(|r| {
                        r.iter().any(|r| r["reference"] == shown.reference.as_str())
                    });
                if !has_review {
                    broken.push(format!(
                        "{id}: a payment of the wrong amount ({}) left no review: {view}",
                        shown.reference
                    ));
                }
            }
            // Its review closed by the operator: it may have ended since.
            _ if sim
                .reviews_closed
                .contains(&(id.clone(), shown.reference.clone())) => {}
            other => broken.push(format!(
                "{id} is under review ({}) but its record is gone: {other:?}",
                shown.reference
            )),
        }
    }
    if broken.is_empty() {
        Ok(checks)
    } else {
        Err(broken)
    }
}
