//! Deposits: the create request, the stored record and the status view.
//!
//! A deposit's state lives in two keys. `deposit:{id}` holds what create and FAILED callbacks
//! write. `credit:{id}` exists once a PAID callback won the payment claim and holds everything
//! about the payment and its delivery to the bot. The deposit is PAID exactly when
//! `credit:{id}` exists, so a concurrent FAILED callback can never overwrite a payment.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::credit::Credit;
use crate::error::ApiError;
use crate::platform::Random;

/// Where a deposit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DepositStatus {
    /// Invoice created, no final callback yet.
    Pending,
    /// Paid (final).
    Paid,
    /// The gateway reported a failure; a later PAID still wins.
    Failed,
}

/// A callback that was received but did not change the deposit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoredEvent {
    /// Status the callback reported.
    pub status: String,
    /// Why it was ignored.
    pub reason: String,
    /// When it arrived (Unix ms).
    pub at: u64,
}

/// A second invoice of a deposit that was paid after the first was credited: money that
/// arrived and was not credited, to be refunded by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefundDue {
    /// The invoice paid and not credited.
    pub reference: String,
    /// The invoice that was credited.
    pub credited_reference: String,
    /// When its PAID callback arrived (Unix ms).
    pub at: u64,
}

/// A PAID callback that could not be credited and needs a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    /// Machine-readable reason, e.g. `AMOUNT_MISMATCH`.
    pub reason: String,
    /// Amount of the deposit.
    pub expected_amount: u64,
    /// Amount the callback reported (as sent).
    pub received_amount: String,
    /// When it arrived (Unix ms).
    pub at: u64,
}

/// The record stored at `deposit:{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deposit {
    /// Deposit id (also the gateway's order id).
    pub deposit_id: String,
    /// The bot's user id, as a string.
    pub user_id: String,
    /// Amount in rupiah.
    pub amount: u64,
    /// `PENDING` or `FAILED`; PAID is represented by `credit:{id}`.
    pub status: DepositStatus,
    /// Gateway reference.
    pub reference: String,
    /// Where the user pays.
    pub payment_url: String,
    /// Creation time (Unix ms).
    pub created_at: u64,
    /// Product description sent to the gateway.
    pub product_details: String,
    /// Customer e-mail, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Customer phone number, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msisdn: Option<String>,
    /// Whether a FAILED callback was applied.
    #[serde(default)]
    pub callback_received: bool,
    /// When the FAILED callback arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<u64>,
    /// Gateway result code of the last applied callback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<String>,
    /// Set when a PAID callback could not be credited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Callbacks that arrived but changed nothing (newest last, bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_events: Vec<IgnoredEvent>,
    /// Payments received and not credited; kept apart so no later event pushes one out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds_due: Vec<RefundDue>,
}

/// How many ignored events a record keeps.
pub const MAX_IGNORED_EVENTS: usize = 10;

impl Deposit {
    /// Records an ignored callback, keeping only the newest few.
    pub fn push_ignored(&mut self, event: IgnoredEvent) {
        self.ignored_events.push(event);
        let excess = self.ignored_events.len().saturating_sub(MAX_IGNORED_EVENTS);
        self.ignored_events.drain(..excess);
    }

    /// Records a payment of `reference` that is not credited; false if already recorded.
    pub fn add_refund_due(&mut self, reference: &str, credited_reference: &str, at: u64) -> bool {
        if self.refunds_due.iter().any(|r| r.reference == reference) {
            return false;
        }
        self.refunds_due.push(RefundDue {
            reference: reference.to_string(),
            credited_reference: credited_reference.to_string(),
            at,
        });
        true
    }
}

/// A validated `POST /deposit/create` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateDeposit {
    /// User id as a string.
    pub user_id: String,
    /// Amount in rupiah.
    pub amount: u64,
    /// Customer phone number.
    pub msisdn: Option<String>,
    /// Customer e-mail.
    pub email: Option<String>,
    /// Product description.
    pub product_details: Option<String>,
    /// Caller-chosen deposit id.
    pub deposit_id: Option<String>,
}

/// Whether `id` is a valid deposit id: `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_deposit_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `reference` is a plausible gateway reference: 1..=128 printable ASCII, no spaces.
pub fn is_valid_reference(reference: &str) -> bool {
    (1..=128).contains(&reference.len()) && reference.bytes().all(|b| b.is_ascii_graphic())
}

/// `DEP` + 16 upper-case hex digits.
pub fn generate_deposit_id(random: &dyn Random) -> String {
    let mut bytes = [0u8; 8];
    random.fill(&mut bytes);
    format!("DEP{}", hex::encode_upper(bytes))
}

impl CreateDeposit {
    /// Parses and validates the JSON body.
    pub fn parse(body: &[u8], config: &Config) -> Result<Self, ApiError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(ApiError::InvalidJson("expected a JSON object".into()));
        };
        Ok(Self {
            user_id: parse_user_id(&fields)?,
            amount: parse_amount(&fields, config)?,
            msisdn: optional_string(&fields, "msisdn", "INVALID_MSISDN", 20)?
                .map(|m| validate_msisdn(&m).map(|_| m))
                .transpose()?,
            email: optional_string(&fields, "email", "INVALID_EMAIL", 255)?
                .map(|e| validate_email(&e).map(|_| e))
                .transpose()?,
            product_details: optional_string(
                &fields,
                "productDetails",
                "INVALID_PRODUCT_DETAILS",
                255,
            )?,
            deposit_id: parse_deposit_id(&fields)?,
        })
    }
}

fn parse_user_id(fields: &Map<String, Value>) -> Result<String, ApiError> {
    const CODE: &str = "INVALID_USER_ID";
    let user_id = match fields.get("userId") {
        None | Some(Value::Null) => {
            return Err(ApiError::field(CODE, "userId", "userId is required"))
        }
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => {
            return Err(ApiError::field(
                CODE,
                "userId",
                "userId must be a string or an integer",
            ))
        }
    };
    if user_id.is_empty() || user_id.chars().count() > 64 || user_id.chars().any(char::is_control) {
        return Err(ApiError::field(
            CODE,
            "userId",
            "userId must be 1 to 64 characters without control characters",
        ));
    }
    Ok(user_id)
}

fn parse_amount(fields: &Map<String, Value>, config: &Config) -> Result<u64, ApiError> {
    let amount = match fields.get("amount") {
        None | Some(Value::Null) => {
            return Err(ApiError::field(
                "INVALID_AMOUNT",
                "amount",
                "amount is required",
            ))
        }
        Some(Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    }
    .ok_or_else(|| {
        ApiError::field(
            "INVALID_AMOUNT",
            "amount",
            "amount must be a whole number of rupiah",
        )
    })?;
    if amount < config.min_amount || amount > config.max_amount {
        return Err(ApiError::InvalidField {
            code: "AMOUNT_OUT_OF_RANGE",
            field: "amount",
            message: format!(
                "amount must be between {} and {}",
                config.min_amount, config.max_amount
            ),
            extra: Some(serde_json::json!({ "min": config.min_amount, "max": config.max_amount })),
        });
    }
    Ok(amount)
}

fn optional_string(
    fields: &Map<String, Value>,
    field: &'static str,
    code: &'static str,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() > max_chars => Err(ApiError::field(
            code,
            field,
            format!("{field} must be at most {max_chars} characters"),
        )),
        Some(Value::String(s)) if s.chars().any(char::is_control) => Err(ApiError::field(
            code,
            field,
            format!("{field} must not contain control characters"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::field(
            code,
            field,
            format!("{field} must be a string"),
        )),
    }
}

fn validate_msisdn(msisdn: &str) -> Result<(), ApiError> {
    let digits = msisdn.strip_prefix('+').unwrap_or(msisdn);
    if (6..=16).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ApiError::field(
            "INVALID_MSISDN",
            "msisdn",
            "msisdn must be 6 to 16 digits, optionally starting with +",
        ))
    }
}

fn validate_email(email: &str) -> Result<(), ApiError> {
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.contains(char::is_whitespace)
            && !domain.contains('@')
    });
    if valid {
        Ok(())
    } else {
        Err(ApiError::field(
            "INVALID_EMAIL",
            "email",
            "email is not a valid address",
        ))
    }
}

fn parse_deposit_id(fields: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match fields.get("depositId") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_valid_deposit_id(id) => Ok(Some(id.clone())),
        Some(_) => Err(ApiError::field(
            "INVALID_DEPOSIT_ID",
            "depositId",
            "depositId must match [A-Za-z0-9_-]{1,64}",
        )),
    }
}

/// The status of a deposit as `/deposit/status` reports it: the record merged with its credit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DepositView {
    /// Always true.
    pub ok: bool,
    /// Deposit id.
    pub deposit_id: String,
    /// User id.
    pub user_id: String,
    /// Amount in rupiah.
    pub amount: u64,
    /// PENDING, PAID or FAILED.
    pub status: DepositStatus,
    /// Whether the bot accepted the credit.
    pub credited: bool,
    /// Payment page.
    pub payment_url: String,
    /// Gateway reference.
    pub reference: String,
    /// Creation time (Unix ms).
    pub created_at: u64,
    /// Whether a final callback (PAID or FAILED) was received.
    pub callback_received: bool,
    /// When the bot accepted the credit.
    pub credited_at: Option<u64>,
    /// Result of the last credit attempt, or why the payment was not credited.
    pub credit_result: Option<Value>,
    /// When the payment was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<u64>,
    /// Payment method reported by the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    /// Credit deliveries made so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_attempts: Option<u32>,
    /// When the next automatic credit attempt is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_credit_attempt_at: Option<u64>,
    /// Whether automatic retries gave up (a manual retry is still possible).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub credit_exhausted: bool,
    /// A payment that needs a human.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Callbacks that changed nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_events: Vec<IgnoredEvent>,
    /// Payments received and not credited, to refund by hand.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds_due: Vec<RefundDue>,
}

impl DepositView {
    /// Merges the record with its credit state.
    pub fn new(deposit: Deposit, credit: Option<Credit>) -> Self {
        let review_result = deposit.review.as_ref().map(|r| {
            serde_json::json!({
                "ok": false,
                "error": r.reason,
                "detail": { "expectedAmount": r.expected_amount, "receivedAmount": r.received_amount },
            })
        });
        let status = if credit.is_some() {
            DepositStatus::Paid
        } else {
            deposit.status
        };
        Self {
            ok: true,
            status,
            credited: credit.as_ref().is_some_and(Credit::is_credited),
            callback_received: deposit.callback_received || credit.is_some(),
            credited_at: credit.as_ref().and_then(|c| c.credited_at),
            credit_result: credit
                .as_ref()
                .and_then(|c| c.last_result.clone())
                .or(review_result),
            paid_at: credit.as_ref().map(|c| c.paid_at),
            payment_method: credit.as_ref().and_then(|c| c.payment_method.clone()),
            credit_attempts: credit.as_ref().map(|c| c.attempts),
            next_credit_attempt_at: credit.as_ref().and_then(Credit::next_attempt_at),
            credit_exhausted: credit.as_ref().is_some_and(Credit::is_exhausted),
            deposit_id: deposit.deposit_id,
            user_id: deposit.user_id,
            amount: deposit.amount,
            payment_url: deposit.payment_url,
            reference: credit
                .as_ref()
                .and_then(|c| c.paid_reference.clone())
                .unwrap_or(deposit.reference),
            created_at: deposit.created_at,
            review: deposit.review,
            ignored_events: deposit.ignored_events,
            refunds_due: deposit.refunds_due,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_config, FixedRandom};

    fn parse(body: &str) -> Result<CreateDeposit, ApiError> {
        CreateDeposit::parse(body.as_bytes(), &test_config())
    }

    #[test]
    fn valid_bodies() {
        let ok = parse(r#"{"userId":123,"amount":50000}"#).unwrap();
        assert_eq!((ok.user_id.as_str(), ok.amount), ("123", 50000));
        assert_eq!(ok.deposit_id, None);

        let full = parse(
            r#"{"userId":"tg:42","amount":1000,"msisdn":"+628123456789","email":"a@b.co",
                "productDetails":"Top up","depositId":"my_ID-1","extra":true}"#,
        )
        .unwrap();
        assert_eq!(full.user_id, "tg:42");
        assert_eq!(full.msisdn.as_deref(), Some("+628123456789"));
        assert_eq!(full.email.as_deref(), Some("a@b.co"));
        assert_eq!(full.deposit_id.as_deref(), Some("my_ID-1"));

        let negative_chat = parse(r#"{"userId":-100123,"amount":100000000}"#).unwrap();
        assert_eq!(negative_chat.user_id, "-100123");
        let empty_optional = parse(r#"{"userId":"u","amount":1000,"email":"","msisdn":null}"#);
        assert_eq!(empty_optional.unwrap().email, None);
    }

    #[test]
    fn every_validation_rule_has_its_code() {
        let long_id = "x".repeat(65);
        let cases: Vec<(String, &str, &str)> = vec![
            ("not json".into(), "INVALID_JSON", ""),
            ("[1,2]".into(), "INVALID_JSON", ""),
            (r#"{"amount":5000}"#.into(), "INVALID_USER_ID", "userId"),
            (
                r#"{"userId":"","amount":5000}"#.into(),
                "INVALID_USER_ID",
                "userId",
            ),
            (
                format!(r#"{{"userId":"{long_id}","amount":5000}}"#),
                "INVALID_USER_ID",
                "userId",
            ),
            (
                r#"{"userId":1.5,"amount":5000}"#.into(),
                "INVALID_USER_ID",
                "userId",
            ),
            (
                r#"{"userId":true,"amount":5000}"#.into(),
                "INVALID_USER_ID",
                "userId",
            ),
            (
                r#"{"userId":"a\nb","amount":5000}"#.into(),
                "INVALID_USER_ID",
                "userId",
            ),
            (r#"{"userId":"u"}"#.into(), "INVALID_AMOUNT", "amount"),
            (
                r#"{"userId":"u","amount":"50000"}"#.into(),
                "INVALID_AMOUNT",
                "amount",
            ),
            (
                r#"{"userId":"u","amount":5000.5}"#.into(),
                "INVALID_AMOUNT",
                "amount",
            ),
            (
                r#"{"userId":"u","amount":-5000}"#.into(),
                "INVALID_AMOUNT",
                "amount",
            ),
            (
                r#"{"userId":"u","amount":999}"#.into(),
                "AMOUNT_OUT_OF_RANGE",
                "amount",
            ),
            (
                r#"{"userId":"u","amount":100000001}"#.into(),
                "AMOUNT_OUT_OF_RANGE",
                "amount",
            ),
            (
                r#"{"userId":"u","amount":5000,"msisdn":"12ab"}"#.into(),
                "INVALID_MSISDN",
                "msisdn",
            ),
            (
                r#"{"userId":"u","amount":5000,"msisdn":812}"#.into(),
                "INVALID_MSISDN",
                "msisdn",
            ),
            (
                r#"{"userId":"u","amount":5000,"email":"nope"}"#.into(),
                "INVALID_EMAIL",
                "email",
            ),
            (
                r#"{"userId":"u","amount":5000,"email":"a@b"}"#.into(),
                "INVALID_EMAIL",
                "email",
            ),
            (
                format!(
                    r#"{{"userId":"u","amount":5000,"productDetails":"{}"}}"#,
                    "p".repeat(256)
                ),
                "INVALID_PRODUCT_DETAILS",
                "productDetails",
            ),
            (
                r#"{"userId":"u","amount":5000,"depositId":"a b"}"#.into(),
                "INVALID_DEPOSIT_ID",
                "depositId",
            ),
            (
                r#"{"userId":"u","amount":5000,"depositId":""}"#.into(),
                "INVALID_DEPOSIT_ID",
                "depositId",
            ),
            (
                format!(r#"{{"userId":"u","amount":5000,"depositId":"{long_id}"}}"#),
                "INVALID_DEPOSIT_ID",
                "depositId",
            ),
            (
                r#"{"userId":"u","amount":5000,"depositId":7}"#.into(),
                "INVALID_DEPOSIT_ID",
                "depositId",
            ),
        ];
        for (body, code, field) in cases {
            let err = parse(&body).expect_err(&body);
            assert_eq!(err.status(), 400, "{body}");
            assert_eq!(err.code(), code, "{body}");
            let response = err.into_response().json_body();
            if !field.is_empty() {
                assert_eq!(response["detail"]["field"], field, "{body}");
            }
        }
    }

    #[test]
    fn out_of_range_reports_the_bounds() {
        let body = parse(r#"{"userId":"u","amount":1}"#)
            .unwrap_err()
            .into_response()
            .json_body();
        assert_eq!(body["detail"]["min"], 1000);
        assert_eq!(body["detail"]["max"], 100_000_000);
    }

    #[test]
    fn generated_ids_are_dep_plus_16_upper_hex() {
        let id = generate_deposit_id(&FixedRandom(0xAB));
        assert_eq!(id, "DEPABABABABABABABAB");
        assert!(is_valid_deposit_id(&id));
    }

    #[test]
    fn references_must_be_printable_ascii() {
        assert!(is_valid_reference("DS1234-ABC"));
        for bad in ["", "with space", "tab\t", "é"] {
            assert!(!is_valid_reference(bad), "{bad:?}");
        }
        assert!(!is_valid_reference(&"r".repeat(129)));
    }

    #[test]
    fn ignored_events_are_bounded() {
        let mut deposit = crate::testing::sample_deposit("D1", 5000);
        for at in 0..25 {
            deposit.push_ignored(IgnoredEvent {
                status: "FAILED".into(),
                reason: "PAID is final".into(),
                at,
            });
        }
        assert_eq!(deposit.ignored_events.len(), MAX_IGNORED_EVENTS);
        assert_eq!(deposit.ignored_events[0].at, 15);
    }

    #[test]
    fn a_refund_due_is_recorded_once_per_invoice() {
        let mut deposit = crate::testing::sample_deposit("D1", 5000);
        assert!(deposit.add_refund_due("INV2", "INV1", 7));
        assert!(
            !deposit.add_refund_due("INV2", "INV1", 9),
            "same invoice again"
        );
        assert!(deposit.add_refund_due("INV3", "INV1", 11));
        let refs: Vec<_> = deposit
            .refunds_due
            .iter()
            .map(|r| (r.reference.as_str(), r.at))
            .collect();
        assert_eq!(refs, [("INV2", 7), ("INV3", 11)]);
    }
}
