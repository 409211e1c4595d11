//! The bot's credit protocol: the signed credit call, how its answer is read, and the quick
//! attempts a PAID callback makes before leaving the rest to the sweep.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{CreditTarget, Delivery, Unroutable, INLINE_BUDGET};
use crate::http::body_excerpt;
use crate::platform::{
    millis, Clock, HttpClient, HttpMethod, OutboundRequest, OutboundResponse, TransportError,
};
use crate::signature::signed_headers;

/// Pauses between inline attempts.
const INLINE_BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(400)];
/// An inline attempt is not started with less time than this left.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(150);

/// The body the bot receives; identical bytes on every resend of a deposit.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditCall<'a> {
    /// Our deposit id; also the `Idempotency-Key`.
    pub deposit_id: &'a str,
    /// The bot's user.
    pub user_id: &'a str,
    /// Rupiah paid.
    pub amount: u64,
    /// The gateway's reference.
    pub reference: &'a str,
    /// Always `PAID`.
    pub status: &'static str,
    /// When the payment was recorded (ms since the epoch).
    pub paid_at: u64,
    /// The gateway's payment method, when it said.
    pub payment_method: Option<&'a str>,
    /// The bot credited, when it is not `default` (a single-bot deployment's credits keep
    /// the original body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<&'a str>,
}

/// The credit request for a payment, signed with its bot's secret (POST to the bot's credit
/// URL: `{bot_backend_url}{bot_credit_path}` for `default`).
pub fn credit_request(
    target: &CreditTarget,
    call: &CreditCall,
    now: u64,
    timeout: Duration,
) -> OutboundRequest {
    let body = serde_json::to_vec(call).unwrap_or_default();
    OutboundRequest {
        method: HttpMethod::Post,
        url: target.url.clone(),
        headers: signed_headers(target.auth, &body, now, call.deposit_id)
            .into_iter()
            .chain([("idempotency-key".to_string(), call.deposit_id.to_string())])
            .collect(),
        body,
        timeout,
    }
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
    /// Not sent: the deposit's bot is not configured, or the manifest does not let us reach
    /// it. The credit stays owed; no attempt or retry is counted.
    NotSent(Unroutable),
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
                        body: body_excerpt(&response.body),
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
            Self::Accepted | Self::NotSent(_) => false,
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
            Self::NotSent(why) => json!({
                "ok": false,
                "error": match why {
                    Unroutable::UnknownBot(_) => "BOT_NOT_CONFIGURED",
                    Unroutable::OriginNotAllowed(_) => "BOT_ORIGIN_NOT_ALLOWED",
                },
                "detail": { "status": Value::Null, "body": Value::Null, "reason": why.config_error().to_string() },
            }),
        }
    }
}

/// Quick attempts inside the PAID callback: at most [`INLINE_BUDGET`] in all.
/// Returns the last outcome and how many deliveries were made.
pub fn deliver_inline(
    target: &CreditTarget,
    delivery: &Delivery,
    call: &CreditCall,
    http: &dyn HttpClient,
    clock: &dyn Clock,
) -> (DeliveryOutcome, u32) {
    let started = clock.now_ms();
    let budget = millis(INLINE_BUDGET);
    let mut deliveries = 0;
    loop {
        let now = clock.now_ms();
        let remaining = budget.saturating_sub(now.saturating_sub(started));
        let timeout = Duration::from_millis(remaining).min(delivery.bot_timeout);
        let request = credit_request(target, call, now, timeout);
        let outcome = DeliveryOutcome::classify(http.send(request));
        deliveries += 1;
        let pause = INLINE_BACKOFF.get(deliveries as usize - 1).copied();
        let time_left = budget.saturating_sub(clock.now_ms().saturating_sub(started));
        match pause {
            Some(pause)
                if outcome.worth_quick_retry() && time_left >= millis(pause + MIN_ATTEMPT_TIME) =>
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
    use crate::config::Config;
    use crate::ids::BotId;
    use crate::signature::verify_signature;
    use crate::testing::{sample_credit, test_config, ManualClock, ScriptedHttp};

    fn default_target(config: &Config) -> CreditTarget<'_> {
        config
            .bot_routes()
            .unwrap()
            .target(&BotId::default())
            .unwrap()
    }

    #[test]
    fn credit_request_follows_the_protocol() {
        let config = test_config();
        let request = credit_request(
            &default_target(&config),
            &sample_credit(1_000).call(),
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
            [&config.auth().unwrap().shared_secret],
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
        let credit = sample_credit(1_000);
        let a = credit_request(
            &default_target(&config),
            &credit.call(),
            5_000,
            Duration::from_secs(1),
        );
        let b = credit_request(
            &default_target(&config),
            &credit.call(),
            99_000,
            Duration::from_secs(1),
        );
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
            crate::http::BODY_EXCERPT_BYTES
        );
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
        let (outcome, n) = deliver_inline(
            &default_target(&config),
            config.delivery().unwrap(),
            &sample_credit(0).call(),
            &http,
            &clock,
        );
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
        let (outcome, n) = deliver_inline(
            &default_target(&config),
            config.delivery().unwrap(),
            &sample_credit(0).call(),
            &http,
            &clock,
        );
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
        let (_, n) = deliver_inline(
            &default_target(&config),
            config.delivery().unwrap(),
            &sample_credit(0).call(),
            &http,
            &clock,
        );
        assert_eq!(n, 1);
    }
}
