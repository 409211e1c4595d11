//! Raising an alert where money needs a hand (see [`crate::alert`]), and the run of
//! `POST /internal/alerts`: it makes the alerts raised, delivers those due to the webhook and
//! Telegram, and forgets those delivered a lifetime ago. Run it on the sweep's schedule.

use serde::Serialize;
use serde_json::json;

use crate::alert::{Alert, AlertKind, AlertLog, AlertState};
use crate::bot::DeliveryOutcome;
use crate::config::{Alerts, Config, Delivery, ALERT_SWITCHES};
use crate::deposit::note::NoteKind;
use crate::error::ApiError;
use crate::flow::walk::{run_schedule, TaskRunner};
use crate::ids::{DepositId, GatewayName, Reference};
use crate::platform::{millis, HttpMethod, OutboundRequest, Platform, StoreError, Variables};
use crate::signature::signed_headers;
use crate::store::schedule::{AlertTask, Schedule, Task, ALERTS};
use crate::store::DepositStore;

/// Whether alerts are on: `alert_url` or `alert_telegram_chat_id` is set. Read only when
/// something is to be alerted (two variables), so routes read nothing for alerts otherwise.
pub fn alerts_on(variables: &dyn Variables) -> bool {
    ALERT_SWITCHES
        .iter()
        .any(|name| variables.get(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// Reports an event of `kind` about deposit `id` (and `detail`: see [`AlertTask::Raise`])
/// when alerts are on: one task, so the route where it happened links little more than
/// this; the alerts' run makes the alert of it, once per kind and subject. What happened
/// is recorded already: a store that fails now costs the alert (logged), not the request;
/// the console's attention list still shows it.
pub fn raise(
    variables: &dyn Variables,
    store: &DepositStore,
    kind: AlertKind,
    id: &str,
    detail: &str,
) {
    if !alerts_on(variables) {
        return;
    }
    let task = AlertTask::raise(kind.as_str(), id, detail);
    let now = store.now();
    if ALERTS
        .add(
            store.claims,
            store.records,
            store.clock,
            now,
            &task,
            Vec::new(),
        )
        .is_err()
    {
        // Logged, and the request goes on: what happened is recorded already.
        eprintln!(
            "alert {} of {id} not raised: the store failed",
            kind.as_str()
        );
    }
}

/// Alerts sent concurrently.
const BATCH_SIZE: usize = 16;
/// Most tasks one run takes on.
const MAX_TASKS: u32 = 1_000;
/// A run starts no new task after this long (ms).
const TIME_BUDGET_MS: u64 = 20_000;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertReport {
    /// Always true.
    pub ok: bool,
    /// Alerts every channel has now taken.
    pub sent: u32,
    /// Attempts that failed on some channel (retried, unless given up).
    pub failed: u32,
    /// Of the failed, how many ran out of attempts.
    pub gave_up: u32,
    /// Alerts forgotten a lifetime after their delivery ended.
    pub forgotten: u32,
    /// Records it could not read, set aside.
    pub quarantined: u32,
    /// True when the run stopped early with tasks due left; run it again.
    pub more: bool,
}

struct Run<'a, 'p> {
    store: DepositStore<'a>,
    platform: &'a Platform<'p>,
    alerts: Alerts,
    delivery: &'a Delivery,
    report: AlertReport,
    /// Attempts claimed, to send together: each alert with its delivery so far.
    batch: Vec<(Alert, AlertLog)>,
    started: u64,
    tasks: u32,
}

/// Runs the alerts' schedule once.
pub fn run_alerts(platform: &Platform, config: &Config) -> Result<AlertReport, ApiError> {
    let store = DepositStore::new(platform, config.lifetime()?);
    let started = store.now();
    let mut run = Run {
        store,
        platform,
        alerts: config.alerts()?,
        delivery: config.delivery()?,
        report: AlertReport {
            ok: true,
            ..AlertReport::default()
        },
        batch: Vec::new(),
        started,
        tasks: 0,
    };
    if run.alerts.is_on() {
        run.alert_quarantined()?;
    }
    run_schedule(&mut run, &ALERTS)?;
    run.flush()?;
    Ok(run.report)
}

impl Run<'_, '_> {
    /// Alerts the records quarantined since the last run (by the sweep, or by this run).
    fn alert_quarantined(&mut self) -> Result<(), StoreError> {
        let seen = self.store.alerted_quarantine()?;
        let (last, entries) = self.store.quarantined_after(seen)?;
        if last == seen {
            return Ok(());
        }
        let now = self.store.now();
        for entry in entries {
            let field = |name: &str| entry.get(name).and_then(|v| v.as_str()).unwrap_or("?");
            let at = entry.get("at").and_then(|v| v.as_u64()).unwrap_or(now);
            let alert = Alert::quarantined(field("what"), field("reason"), at);
            if self.store.raise_alert(&alert)? {
                self.attempt(alert.kind.as_str(), &alert.subject, 0)?;
            }
        }
        self.store.save_alerted_quarantine(last)
    }

    /// Makes the alert of an event a route reported, from what the store holds, and queues
    /// its first attempt unless its subject was alerted of this kind already.
    fn raised(&mut self, kind: &str, id: &str, detail: &str) -> Result<(), StoreError> {
        let store = &self.store;
        let now = store.now();
        let deposit = DepositId::parse(id);
        // The invoice a refund or a review is about.
        let invoice = match (kind, Reference::parse(detail)) {
            ("refundDue" | "review", Some(reference)) => store.invoice(&reference)?,
            _ => None,
        };
        let alert = match (kind, deposit, invoice) {
            ("exhausted", Some(id), _) => {
                let epoch = store.deposit(&id)?.map(|d| d.v.epoch);
                let log = store.credit_log(&id)?.of_epoch(epoch);
                let Some(credit) = log.current() else {
                    return Ok(());
                };
                Alert::exhausted(credit, now)
            }
            ("refundDue", _, Some(invoice)) => Alert::refund_due(&invoice, now),
            ("review", _, Some(invoice)) => {
                let received = store
                    .notes(&invoice.deposit_id)?
                    .into_iter()
                    .find_map(|n| match n.kind {
                        NoteKind::WrongAmount { received }
                            if n.reference == invoice.reference && n.epoch == invoice.epoch =>
                        {
                            Some(received)
                        }
                        _ => None,
                    })
                    .unwrap_or_else(|| "another amount".into());
                Alert::review(&invoice, &received, now)
            }
            ("callbacksMissing", Some(id), _) => match GatewayName::parse(detail) {
                Some(gateway) => Alert::callbacks_missing(gateway, &id, now),
                None => return Ok(()),
            },
            // Its deposit or invoice is gone (removed at the end of its life): nothing to tell.
            _ => return Ok(()),
        };
        if store.raise_alert(&alert)? {
            let subject = alert.subject.clone();
            self.attempt(alert.kind.as_str(), &subject, 0)?;
        }
        Ok(())
    }

    /// Claims attempt `n` of an alert and queues it; the attempt after it is scheduled first,
    /// so a run that dies mid-way is followed by the next one.
    fn attempt(&mut self, kind: &str, subject: &str, n: u32) -> Result<(), StoreError> {
        let store = &self.store;
        let Some((alert, log)) = store.alert(kind, subject)? else {
            return Ok(());
        };
        if log
            .as_ref()
            .is_some_and(|log| log.is_final() || log.attempts > n)
        {
            return Ok(());
        }
        if !store.claim_alert_attempt(&alert, n)? {
            return Ok(());
        }
        let now = store.now();
        // The channels that took it before, and what the last attempt heard.
        let (webhook, telegram, last_result) = log.map_or((false, false, None), |l| {
            (l.webhook, l.telegram, l.last_result)
        });
        let log = AlertLog {
            attempts: n.saturating_add(1),
            webhook,
            telegram,
            state: AlertState::Retrying,
            last_result,
            at: now,
        };
        let delay = millis(self.delivery.retry_delay(n));
        let next = AlertTask::Attempt {
            kind: kind.into(),
            subject: subject.into(),
            n: n.saturating_add(1),
        };
        store.save_alert_log(&alert, &log, Some((next.task(), now.saturating_add(delay))))?;
        self.batch.push((alert, log));
        if self.batch.len() >= BATCH_SIZE {
            self.flush()?;
        }
        Ok(())
    }

    /// The requests of one attempt: to each channel that has not taken it yet.
    fn requests(&self, alert: &Alert, log: &AlertLog, now: u64) -> Vec<(Channel, OutboundRequest)> {
        let timeout = self.delivery.bot_timeout;
        let mut requests = Vec::new();
        if let (Some(webhook), false) = (&self.alerts.webhook, log.webhook) {
            let id = alert.id();
            let body = alert.body();
            let mut headers = signed_headers(&webhook.auth, &body, now, &id);
            headers.push(("idempotency-key".into(), id));
            requests.push((
                Channel::Webhook,
                OutboundRequest {
                    method: HttpMethod::Post,
                    url: webhook.url.clone(),
                    headers,
                    body,
                    timeout,
                },
            ));
        }
        if let (Some(telegram), false) = (&self.alerts.telegram, log.telegram) {
            let body = json!({
                "chat_id": telegram.chat_id,
                "text": alert.text,
                "disable_web_page_preview": true,
            });
            requests.push((
                Channel::Telegram,
                OutboundRequest {
                    method: HttpMethod::Post,
                    url: format!(
                        "{}/bot{}/sendMessage",
                        telegram.api_url,
                        String::from_utf8_lossy(telegram.bot_token.expose())
                    ),
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: body.to_string().into_bytes(),
                    timeout,
                },
            ));
        }
        requests
    }

    /// A channel's answer for the record: never the Telegram token (it is in the URL, and a
    /// transport error may quote it).
    fn describe(&self, channel: Channel, outcome: &DeliveryOutcome) -> String {
        let mut text = format!("{}: {}", channel.name(), outcome.result_json());
        if let Some(telegram) = &self.alerts.telegram {
            let token = String::from_utf8_lossy(telegram.bot_token.expose()).into_owned();
            if !token.is_empty() {
                text = text.replace(&token, "***");
            }
        }
        text.chars().take(400).collect()
    }
}

/// Where an alert goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Webhook,
    Telegram,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Telegram => "telegram",
        }
    }
}

impl<'a> TaskRunner<'a> for Run<'a, '_> {
    fn store(&self) -> &DepositStore<'a> {
        &self.store
    }

    fn out_of_budget(&self, _: &Schedule) -> bool {
        self.tasks >= MAX_TASKS || self.store.now().saturating_sub(self.started) > TIME_BUDGET_MS
    }

    fn run(&mut self, task: Task) -> Result<(), StoreError> {
        self.tasks += 1;
        let Task::Alert(text) = task else {
            // Nothing else is scheduled here.
            return Ok(());
        };
        let Some(task) = AlertTask::parse(&text) else {
            return self.quarantine(&format!("alert task {text}"), "not an alert task");
        };
        let outcome = match &task {
            AlertTask::Attempt { kind, subject, n } => self.attempt(kind, subject, *n),
            AlertTask::Raise { kind, id, detail } => self.raised(kind, id, detail),
            AlertTask::Forget { kind, subject, n } => self
                .store
                .forget_alert(kind, subject, *n)
                .map(|()| self.report.forgotten += 1),
        };
        match outcome {
            // A record it could not read is set aside, and the run goes on.
            Err(StoreError::Corrupt(reason)) => {
                self.quarantine(&format!("alert task {text}"), &reason)
            }
            other => other,
        }
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let now = self.store.now();
        let planned: Vec<Vec<(Channel, OutboundRequest)>> = batch
            .iter()
            .map(|(alert, log)| self.requests(alert, log, now))
            .collect();
        let mut answers = self
            .platform
            .http
            .send_all(
                planned
                    .iter()
                    .flatten()
                    .map(|(_, request)| request.clone())
                    .collect(),
            )
            .into_iter();
        let done = self.store.now();
        let max_attempts = self.delivery.credit_max_retries.saturating_add(1);
        for ((alert, mut log), requests) in batch.into_iter().zip(planned) {
            let mut results = Vec::new();
            for (channel, _) in &requests {
                let outcome = DeliveryOutcome::classify(answers.next().unwrap_or_else(|| {
                    Err(crate::platform::TransportError::Other("no answer".into()))
                }));
                if outcome.is_success() {
                    match channel {
                        Channel::Webhook => log.webhook = true,
                        Channel::Telegram => log.telegram = true,
                    }
                } else {
                    results.push(self.describe(*channel, &outcome));
                }
            }
            log.at = done;
            let forget_at = done.saturating_add(self.store.ttl_ms());
            log.state = if requests.is_empty() && !self.alerts.is_on() {
                AlertState::NoChannel
            } else if results.is_empty() {
                self.report.sent += 1;
                AlertState::Sent
            } else {
                self.report.failed += 1;
                if log.attempts >= max_attempts {
                    self.report.gave_up += 1;
                    AlertState::GaveUp
                } else {
                    AlertState::Retrying
                }
            };
            log.last_result = (!results.is_empty()).then(|| results.join("; "));
            let then = log.is_final().then(|| {
                (
                    AlertTask::Forget {
                        kind: alert.kind.as_str().into(),
                        subject: alert.subject.clone(),
                        n: log.attempts,
                    }
                    .task(),
                    forget_at,
                )
            });
            if let Some(result) = &log.last_result {
                eprintln!(
                    "alert {}: attempt {} failed: {result}",
                    alert.id(),
                    log.attempts
                );
            }
            self.store.save_alert_log(&alert, &log, then)?;
        }
        Ok(())
    }

    fn quarantine(&mut self, what: &str, reason: &str) -> Result<(), StoreError> {
        self.report.quarantined += 1;
        self.store.quarantine(what, reason)
    }

    fn more(&mut self) {
        self.report.more = true;
    }
}
