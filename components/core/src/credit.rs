//! Crediting the bot: the state kept at `credit:{id}`, the bot's credit protocol, quick inline
//! attempts and the durable retry schedule.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::Config;
use crate::deposit::Deposit;
use crate::platform::{Clock, HttpClient, OutboundRequest, OutboundResponse, TransportError};
use crate::signature::sign;

/// Total time the PAID callback spends on inline credit attempts.
pub const INLINE_BUDGET: Duration = Duration::from_millis(2000);
/// Pauses between inline attempts.
const INLINE_BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(400)];
/// An inline attempt is not started with less time than this left.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(150);
/// How much of an upstream body is kept in `creditResult`.
pub const BODY_EXCERPT_BYTES: usize = 300;

/// Where the delivery of a paid deposit stands.
// Externally tagged: `{"inFlight":{"leaseUntil":…}}`, `"credited"` (cheaper to decode in wasm
// than an internally tagged enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CreditState {
    /// An owner is delivering; nobody else may until the lease ends.
    #[serde(rename_all = "camelCase")]
    InFlight {
        /// Unix ms after which the owner is presumed dead.
        lease_until: u64,
    },
    /// Waiting for the next scheduled retry.
    #[serde(rename_all = "camelCase")]
    Scheduled {
        /// Unix ms when the retry is due.
        next_at: u64,
    },
    /// The bot accepted the credit (final).
    Credited,
    /// Automatic retries gave up; only a manual retry tries again.
    Exhausted,
}

/// The payment and its delivery, stored at `credit:{id}`. Its existence means PAID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credit {
    /// When the payment was recorded (Unix ms); sent to the bot, identical on every resend.
    pub paid_at: u64,
    /// Payment method reported by the gateway.
    pub payment_method: Option<String>,
    /// Gateway result code.
    pub result_code: Option<String>,
    /// The invoice that was paid, when it is not the deposit's current one (a repeated create
    /// raced the first and the PG issued a second invoice for the same deposit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_reference: Option<String>,
    /// True when a sweep recovered a payment whose callback handler died before recording it.
    #[serde(default)]
    pub recovered: bool,
    /// Owner generation: 0 is the callback that won the payment claim, each take-over adds 1.
    pub generation: u32,
    /// Deliveries made so far.
    pub attempts: u32,
    /// Scheduled retries made so far.
    pub retries: u32,
    /// Delivery state.
    pub state: CreditState,
    /// When the bot accepted the credit.
    pub credited_at: Option<u64>,
    /// Outcome of the last delivery.
    pub last_result: Option<Value>,
}

/// Who makes a delivery attempt; decides how a failure is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// The PAID callback's quick attempts.
    Inline,
    /// A sweep's scheduled retry.
    Scheduled,
    /// An operator's manual retry.
    Manual,
}

impl Credit {
    /// A fresh payment owned by the callback that won the claim.
    pub fn new_payment(
        paid_at: u64,
        payment_method: Option<String>,
        result_code: Option<String>,
        lease: Duration,
    ) -> Self {
        Self {
            paid_at,
            payment_method,
            result_code,
            paid_reference: None,
            recovered: false,
            generation: 0,
            attempts: 0,
            retries: 0,
            state: CreditState::InFlight {
                lease_until: paid_at.saturating_add(lease_ms(lease)),
            },
            credited_at: None,
            last_result: None,
        }
    }

    /// The gateway reference of the paid invoice.
    pub fn reference<'a>(&'a self, deposit: &'a Deposit) -> &'a str {
        self.paid_reference.as_deref().unwrap_or(&deposit.reference)
    }

    /// Whether the bot accepted the credit.
    pub fn is_credited(&self) -> bool {
        self.state == CreditState::Credited
    }

    /// Whether automatic retries gave up.
    pub fn is_exhausted(&self) -> bool {
        self.state == CreditState::Exhausted
    }

    /// When the next automatic attempt may start.
    pub fn next_attempt_at(&self) -> Option<u64> {
        match self.state {
            CreditState::InFlight { lease_until } => Some(lease_until),
            CreditState::Scheduled { next_at } => Some(next_at),
            CreditState::Credited | CreditState::Exhausted => None,
        }
    }

    /// Whether a sweep should attempt delivery at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        self.next_attempt_at().is_some_and(|at| now >= at)
    }

    /// Whether an owner currently holds a valid lease.
    pub fn is_in_flight(&self, now: u64) -> bool {
        matches!(self.state, CreditState::InFlight { lease_until } if now < lease_until)
    }

    /// Takes ownership as generation `generation` for one attempt.
    pub fn take_over(&mut self, generation: u32, now: u64, lease: Duration) {
        self.generation = generation;
        self.state = CreditState::InFlight {
            lease_until: now.saturating_add(lease_ms(lease)),
        };
    }

    /// Records the outcome of `deliveries` attempts made by `kind` and schedules what follows.
    pub fn record(
        &mut self,
        outcome: &DeliveryOutcome,
        deliveries: u32,
        kind: AttemptKind,
        now: u64,
        config: &Config,
    ) {
        self.attempts = self.attempts.saturating_add(deliveries);
        self.last_result = Some(outcome.result_json());
        if outcome.is_success() {
            self.state = CreditState::Credited;
            self.credited_at = Some(now);
            return;
        }
        let was_exhausted = self.is_exhausted();
        if kind == AttemptKind::Scheduled {
            self.retries = self.retries.saturating_add(1);
        }
        self.state = if was_exhausted || self.retries >= config.credit_max_retries {
            CreditState::Exhausted
        } else {
            let schedule = &config.credit_retry_schedule;
            let index = (self.retries as usize).min(schedule.len().saturating_sub(1));
            let delay = schedule
                .get(index)
                .copied()
                .unwrap_or(Duration::from_secs(60));
            CreditState::Scheduled {
                next_at: now.saturating_add(lease_ms(delay)),
            }
        };
    }
}

fn lease_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The body the bot receives; identical bytes on every resend of a deposit.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreditBody<'a> {
    deposit_id: &'a str,
    user_id: &'a str,
    amount: u64,
    reference: &'a str,
    status: &'static str,
    paid_at: u64,
    payment_method: Option<&'a str>,
}

/// The signed credit request for `deposit` (POST `{bot_backend_url}{bot_credit_path}`).
pub fn credit_request(
    config: &Config,
    deposit: &Deposit,
    credit: &Credit,
    now: u64,
    timeout: Duration,
) -> OutboundRequest {
    let body = serde_json::to_vec(&CreditBody {
        deposit_id: &deposit.deposit_id,
        user_id: &deposit.user_id,
        amount: deposit.amount,
        reference: credit.reference(deposit),
        status: "PAID",
        paid_at: credit.paid_at,
        payment_method: credit.payment_method.as_deref(),
    })
    .unwrap_or_default();
    OutboundRequest {
        url: format!("{}{}", config.bot_backend_url, config.bot_credit_path),
        headers: signed_headers(config, &body, now)
            .into_iter()
            .chain([("idempotency-key".to_string(), deposit.deposit_id.clone())])
            .collect(),
        body,
        timeout,
    }
}

/// Headers of every signed outbound call: bearer, signature over the exact body, timestamp.
pub fn signed_headers(config: &Config, body: &[u8], now: u64) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        (
            "authorization".into(),
            format!(
                "Bearer {}",
                String::from_utf8_lossy(config.shared_secret.expose())
            ),
        ),
        ("x-signature".into(), sign(&config.shared_secret, body)),
        ("x-timestamp".into(), now.to_string()),
    ]
}

/// What one delivery attempt achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// 2xx and the body does not say `"ok":false`.
    Accepted,
    /// The bot answered, but not with success.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Body excerpt.
        body: String,
    },
    /// No answer.
    Unreachable(TransportError),
}

impl DeliveryOutcome {
    /// Classifies the bot's answer.
    pub fn classify(result: Result<OutboundResponse, TransportError>) -> Self {
        match result {
            Err(error) => Self::Unreachable(error),
            Ok(response) => {
                let declined = serde_json::from_slice::<Value>(&response.body)
                    .ok()
                    .is_some_and(|v| v.get("ok") == Some(&Value::Bool(false)));
                if (200..300).contains(&response.status) && !declined {
                    Self::Accepted
                } else {
                    Self::Rejected {
                        status: response.status,
                        body: excerpt(&response.body),
                    }
                }
            }
        }
    }

    /// Whether the bot accepted the credit.
    pub fn is_success(&self) -> bool {
        *self == Self::Accepted
    }

    /// Whether another quick attempt could help (transport errors, 5xx, 408, 429).
    fn worth_quick_retry(&self) -> bool {
        match self {
            Self::Accepted => false,
            Self::Unreachable(_) => true,
            Self::Rejected { status, .. } => *status >= 500 || matches!(status, 408 | 429),
        }
    }

    /// `creditResult` as stored and reported.
    pub fn result_json(&self) -> Value {
        match self {
            Self::Accepted => json!({ "ok": true }),
            Self::Rejected { status, body } => json!({
                "ok": false,
                "error": if (200..300).contains(status) { "BOT_DECLINED" } else { "BOT_HTTP_ERROR" },
                "detail": { "status": status, "body": body },
            }),
            Self::Unreachable(error) => json!({
                "ok": false,
                "error": "BOT_UNREACHABLE",
                "detail": { "status": Value::Null, "body": Value::Null, "reason": error.to_string() },
            }),
        }
    }
}

/// The first bytes of an upstream body, as text.
pub fn excerpt(body: &[u8]) -> String {
    let cut = body.len().min(BODY_EXCERPT_BYTES);
    String::from_utf8_lossy(&body[..cut]).into_owned()
}

/// Quick attempts inside the PAID callback: at most [`INLINE_BUDGET`] in all.
/// Returns the last outcome and how many deliveries were made.
pub fn deliver_inline(
    config: &Config,
    deposit: &Deposit,
    credit: &Credit,
    http: &dyn HttpClient,
    clock: &dyn Clock,
) -> (DeliveryOutcome, u32) {
    let started = clock.now_ms();
    let budget = lease_ms(INLINE_BUDGET);
    let mut deliveries = 0;
    loop {
        let now = clock.now_ms();
        let remaining = budget.saturating_sub(now.saturating_sub(started));
        let timeout = Duration::from_millis(remaining).min(config.bot_timeout);
        let request = credit_request(config, deposit, credit, now, timeout);
        let outcome = DeliveryOutcome::classify(http.send(request));
        deliveries += 1;
        let pause = INLINE_BACKOFF.get(deliveries as usize - 1).copied();
        let time_left = budget.saturating_sub(clock.now_ms().saturating_sub(started));
        match pause {
            Some(pause)
                if outcome.worth_quick_retry()
                    && time_left >= lease_ms(pause + MIN_ATTEMPT_TIME) =>
            {
                clock.sleep(pause)
            }
            _ => return (outcome, deliveries),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::verify_signature;
    use crate::testing::{sample_deposit, test_config, ManualClock, ScriptedHttp};

    fn paid(now: u64) -> Credit {
        Credit::new_payment(
            now,
            Some("VC".into()),
            Some("00".into()),
            Duration::from_secs(30),
        )
    }

    #[test]
    fn credit_request_follows_the_protocol() {
        let config = test_config();
        let deposit = sample_deposit("DEP1", 50_000);
        let request = credit_request(
            &config,
            &deposit,
            &paid(1_000),
            5_000,
            Duration::from_secs(2),
        );
        assert_eq!(request.url, "http://bot.test/internal/deposit-callback");
        let header = |n: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("idempotency-key"), Some("DEP1"));
        assert_eq!(header("x-timestamp"), Some("5000"));
        assert_eq!(header("authorization"), Some("Bearer test-secret"));
        assert!(verify_signature(
            [&config.shared_secret],
            &request.body,
            header("x-signature").unwrap()
        ));
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            json!({"depositId":"DEP1","userId":"user-1","amount":50000,"reference":"REF-DEP1",
                   "status":"PAID","paidAt":1000,"paymentMethod":"VC"})
        );
    }

    #[test]
    fn resends_carry_identical_bodies() {
        let config = test_config();
        let deposit = sample_deposit("DEP1", 50_000);
        let credit = paid(1_000);
        let a = credit_request(&config, &deposit, &credit, 5_000, Duration::from_secs(1));
        let b = credit_request(&config, &deposit, &credit, 99_000, Duration::from_secs(1));
        assert_eq!(a.body, b.body);
    }

    #[test]
    fn classification() {
        let ok = |status: u16, body: &str| {
            DeliveryOutcome::classify(Ok(OutboundResponse {
                status,
                body: body.as_bytes().to_vec(),
            }))
        };
        assert!(ok(200, r#"{"ok":true}"#).is_success());
        assert!(ok(204, "").is_success());
        assert!(ok(200, "plain text").is_success());
        assert_eq!(
            ok(200, r#"{"ok":false,"error":"user banned"}"#).result_json()["error"],
            "BOT_DECLINED"
        );
        let rejected = ok(503, "down for maintenance").result_json();
        assert_eq!(rejected["error"], "BOT_HTTP_ERROR");
        assert_eq!(rejected["detail"]["status"], 503);
        assert_eq!(rejected["detail"]["body"], "down for maintenance");
        let unreachable = DeliveryOutcome::classify(Err(TransportError::ConnectionRefused));
        assert_eq!(unreachable.result_json()["error"], "BOT_UNREACHABLE");
        assert_eq!(
            ok(500, &"x".repeat(5000)).result_json()["detail"]["body"]
                .as_str()
                .unwrap()
                .len(),
            BODY_EXCERPT_BYTES
        );
    }

    #[test]
    fn schedule_backs_off_then_caps_then_exhausts() {
        let mut config = test_config();
        config.credit_retry_schedule = vec![Duration::from_secs(60), Duration::from_secs(300)];
        config.credit_max_retries = 3;
        let fail = DeliveryOutcome::Unreachable(TransportError::Timeout);
        let mut credit = paid(0);

        credit.record(&fail, 3, AttemptKind::Inline, 1_000, &config);
        assert_eq!(credit.state, CreditState::Scheduled { next_at: 61_000 });
        credit.record(&fail, 1, AttemptKind::Scheduled, 70_000, &config);
        assert_eq!(credit.state, CreditState::Scheduled { next_at: 370_000 });
        credit.record(&fail, 1, AttemptKind::Scheduled, 400_000, &config);
        assert_eq!(
            credit.state,
            CreditState::Scheduled { next_at: 700_000 },
            "last delay repeats"
        );
        credit.record(&fail, 1, AttemptKind::Scheduled, 800_000, &config);
        assert_eq!(credit.state, CreditState::Exhausted);
        assert_eq!((credit.attempts, credit.retries), (6, 3));
        assert!(!credit.is_due(u64::MAX));

        credit.record(&fail, 1, AttemptKind::Manual, 900_000, &config);
        assert_eq!(
            credit.state,
            CreditState::Exhausted,
            "a failed manual retry stays exhausted"
        );
        credit.record(
            &DeliveryOutcome::Accepted,
            1,
            AttemptKind::Manual,
            950_000,
            &config,
        );
        assert!(credit.is_credited());
        assert_eq!(credit.credited_at, Some(950_000));
        assert_eq!(credit.last_result, Some(json!({"ok": true})));
    }

    #[test]
    fn lease_and_due() {
        let mut credit = paid(1_000);
        assert!(credit.is_in_flight(30_999));
        assert!(!credit.is_due(30_999));
        assert!(credit.is_due(31_000));
        credit.take_over(1, 50_000, Duration::from_secs(10));
        assert_eq!(credit.generation, 1);
        assert!(credit.is_in_flight(59_999) && credit.is_due(60_000));
    }

    #[test]
    fn inline_attempts_stop_at_success() {
        let config = test_config();
        let http = ScriptedHttp::new(vec![
            Err(TransportError::ConnectionRefused),
            Ok(OutboundResponse {
                status: 200,
                body: b"{}".to_vec(),
            }),
        ]);
        let clock = ManualClock::new(0);
        let (outcome, n) =
            deliver_inline(&config, &sample_deposit("D", 5000), &paid(0), &http, &clock);
        assert!(outcome.is_success());
        assert_eq!(n, 2);
        assert_eq!(http.requests().len(), 2);
    }

    #[test]
    fn inline_attempts_stay_within_the_budget() {
        let config = test_config();
        // Every attempt takes 900 ms of (simulated) time and fails.
        let http = ScriptedHttp::always(Err(TransportError::Timeout)).with_latency_ms(900);
        let clock = ManualClock::new(0);
        http.attach_clock(&clock);
        let (outcome, n) =
            deliver_inline(&config, &sample_deposit("D", 5000), &paid(0), &http, &clock);
        assert!(!outcome.is_success());
        assert_eq!(
            n, 2,
            "900 + 200 + 900 ms leaves no room for a third attempt"
        );
        assert!(clock.now_ms() <= 2_000, "spent {} ms", clock.now_ms());
        let timeouts: Vec<_> = http.requests().iter().map(|r| r.timeout).collect();
        assert_eq!(timeouts[0], Duration::from_millis(2_000));
        assert_eq!(timeouts[1], Duration::from_millis(900));
    }

    #[test]
    fn inline_attempts_do_not_repeat_client_errors() {
        let config = test_config();
        let http = ScriptedHttp::always(Ok(OutboundResponse {
            status: 401,
            body: vec![],
        }));
        let clock = ManualClock::new(0);
        let (_, n) = deliver_inline(&config, &sample_deposit("D", 5000), &paid(0), &http, &clock);
        assert_eq!(n, 1);
    }
}
