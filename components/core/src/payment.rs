//! The gateway's PAID/FAILED callback and the deposit state machine.
//!
//! `PENDING → PAID`, `PENDING → FAILED`, `FAILED → PAID`; PAID is final. The decision to pay is
//! the payment claim (`increment` returning 1); the winner records the payment at `credit:{id}`
//! before calling the bot, so a crash at any point leaves the deposit listed as owed.

use serde_json::{Map, Value};

use crate::config::Config;
use crate::credit::{deliver_inline, AttemptKind, Credit};
use crate::deposit::{
    is_valid_deposit_id, is_valid_reference, DepositStatus, IgnoredEvent, Review,
};
use crate::error::ApiError;
use crate::platform::Platform;
use crate::replay::claim_nonce;
use crate::storage::{DepositStore, StoredDeposit};

/// Final status reported by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackStatus {
    /// Money received.
    Paid,
    /// Payment failed or expired.
    Failed,
}

/// A validated callback body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentCallback {
    /// Our deposit id.
    pub order_id: Option<String>,
    /// Gateway reference.
    pub reference: Option<String>,
    /// PAID or FAILED.
    pub status: CallbackStatus,
    /// Gateway result code.
    pub result_code: Option<String>,
    /// Amount as sent, and its integer value when it is a whole number.
    pub amount: Option<(String, Option<u64>)>,
    /// Payment method.
    pub payment_method: Option<String>,
}

/// What a callback did; every outcome is answered 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Payment recorded and the bot accepted the credit.
    Credited,
    /// Payment recorded; the credit is scheduled for retry.
    CreditScheduled,
    /// PAID with a different amount: not credited, flagged for review.
    AmountMismatch,
    /// FAILED recorded.
    MarkedFailed,
    /// FAILED after PAID: recorded as ignored.
    FailedIgnored,
    /// Repeat of something already applied (or being applied).
    Duplicate,
}

impl PaymentCallback {
    /// Parses and validates the callback body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(ApiError::InvalidJson("expected a JSON object".into()));
        };
        let data = match fields.get("duitkuData") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(data)) => data.clone(),
            Some(_) => {
                return Err(ApiError::field(
                    "INVALID_CALLBACK",
                    "duitkuData",
                    "duitkuData must be an object",
                ))
            }
        };

        let order_id = text(&fields, "orderId")?;
        if order_id
            .as_deref()
            .is_some_and(|id| !is_valid_deposit_id(id))
        {
            return Err(ApiError::field(
                "INVALID_CALLBACK",
                "orderId",
                "orderId is not a valid deposit id",
            ));
        }
        let merchant_order_id = text(&data, "merchantOrderId")?;
        if let (Some(a), Some(b)) = (&order_id, &merchant_order_id) {
            if a != b {
                return Err(ApiError::field(
                    "INVALID_CALLBACK",
                    "duitkuData.merchantOrderId",
                    "merchantOrderId differs from orderId",
                ));
            }
        }
        let order_id = order_id.or(merchant_order_id.filter(|id| is_valid_deposit_id(id)));
        let reference = text(&fields, "reference")?;
        if reference.as_deref().is_some_and(|r| !is_valid_reference(r)) {
            return Err(ApiError::field(
                "INVALID_CALLBACK",
                "reference",
                "reference is not valid",
            ));
        }
        if order_id.is_none() && reference.is_none() {
            return Err(ApiError::field(
                "INVALID_CALLBACK",
                "orderId",
                "orderId or reference is required",
            ));
        }

        let status = match fields.get("status").and_then(Value::as_str) {
            Some("PAID") => CallbackStatus::Paid,
            Some("FAILED") => CallbackStatus::Failed,
            _ => {
                return Err(ApiError::field(
                    "INVALID_CALLBACK",
                    "status",
                    "status must be \"PAID\" or \"FAILED\"",
                ))
            }
        };
        let result_code = text(&fields, "resultCode")?;
        let amount = amount(&data)?;
        if status == CallbackStatus::Paid {
            if result_code.as_deref().is_some_and(|code| code != "00") {
                return Err(ApiError::field(
                    "INVALID_CALLBACK",
                    "resultCode",
                    "a PAID callback must have resultCode \"00\"",
                ));
            }
            if amount.is_none() {
                return Err(ApiError::field(
                    "INVALID_CALLBACK",
                    "duitkuData.amount",
                    "a PAID callback must carry duitkuData.amount",
                ));
            }
        }
        Ok(Self {
            order_id,
            reference,
            status,
            result_code,
            amount,
            payment_method: text(&data, "paymentMethod")?,
        })
    }
}

/// An optional string field (numbers are accepted and kept as text); at most 255 characters.
fn text(fields: &Map<String, Value>, field: &'static str) -> Result<Option<String>, ApiError> {
    let value = match fields.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => {
            return Err(ApiError::field(
                "INVALID_CALLBACK",
                field,
                format!("{field} must be a string"),
            ))
        }
    };
    if value.chars().count() > 255 || value.chars().any(char::is_control) {
        return Err(ApiError::field(
            "INVALID_CALLBACK",
            field,
            format!("{field} is not valid"),
        ));
    }
    Ok((!value.is_empty()).then_some(value))
}

/// `duitkuData.amount`: an integer or a decimal string such as `"150000"` or `"150000.00"`.
fn amount(data: &Map<String, Value>) -> Result<Option<(String, Option<u64>)>, ApiError> {
    let Some(raw) = text(data, "amount")? else {
        return Ok(None);
    };
    let (whole, fraction) = raw.split_once('.').unwrap_or((&raw, ""));
    let numeric = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !numeric {
        return Err(ApiError::field(
            "INVALID_CALLBACK",
            "duitkuData.amount",
            "amount must be a number",
        ));
    }
    let value = fraction
        .bytes()
        .all(|b| b == b'0')
        .then(|| whole.parse::<u64>().ok())
        .flatten();
    Ok(Some((raw, value)))
}

/// Applies a verified callback. Errors are returned before anything is written.
pub fn apply_callback(
    platform: &Platform,
    config: &Config,
    callback: &PaymentCallback,
    nonce: Option<&str>,
) -> Result<CallbackOutcome, ApiError> {
    let store = DepositStore::new(platform, config);
    let now = platform.clock.now_ms();

    let mut found = None;
    if let Some(id) = &callback.order_id {
        found = store.load(id, now)?;
    }
    if found.is_none() {
        if let Some(reference) = &callback.reference {
            if let Some(id) = store.resolve_reference(reference, now)? {
                found = store.load(&id, now)?;
            }
        }
    }
    let stored = found.ok_or(ApiError::DepositNotFound)?;
    // Concurrent creates of one deposit can leave two invoices, each mapped to it; the one
    // paid is the one credited.
    let mut other_invoice = None;
    if let Some(reference) = &callback.reference {
        if *reference != stored.deposit.reference {
            let id = &stored.deposit.deposit_id;
            if store.resolve_reference(reference, now)?.as_ref() != Some(id) {
                return Err(ApiError::Conflict {
                    code: "REFERENCE_MISMATCH",
                    message: "reference does not belong to this deposit".into(),
                    detail: None,
                });
            }
            other_invoice = Some(reference.clone());
        }
    }
    if let Some(nonce) = nonce {
        if !claim_nonce(platform.claims, nonce, now, config.nonce_ttl_ms)? {
            return Err(ApiError::NonceReused);
        }
    }

    match callback.status {
        CallbackStatus::Failed => apply_failed(&store, stored, callback, now),
        CallbackStatus::Paid => apply_paid(
            platform,
            config,
            &store,
            stored,
            callback,
            other_invoice,
            now,
        ),
    }
}

fn apply_failed(
    store: &DepositStore,
    stored: StoredDeposit,
    callback: &PaymentCallback,
    now: u64,
) -> Result<CallbackOutcome, ApiError> {
    let mut deposit = stored.deposit;
    if stored.credit.is_some() {
        deposit.push_ignored(IgnoredEvent {
            status: "FAILED".into(),
            reason: "PAID is final".into(),
            at: now,
        });
        store.save_deposit(&deposit, now)?;
        return Ok(CallbackOutcome::FailedIgnored);
    }
    if deposit.status == DepositStatus::Failed {
        return Ok(CallbackOutcome::Duplicate);
    }
    deposit.status = DepositStatus::Failed;
    deposit.failed_at = Some(now);
    deposit.callback_received = true;
    deposit.result_code = callback.result_code.clone();
    store.save_deposit(&deposit, now)?;
    Ok(CallbackOutcome::MarkedFailed)
}

fn apply_paid(
    platform: &Platform,
    config: &Config,
    store: &DepositStore,
    stored: StoredDeposit,
    callback: &PaymentCallback,
    paid_reference: Option<String>,
    now: u64,
) -> Result<CallbackOutcome, ApiError> {
    if stored.credit.is_some() {
        return repeated_payment(store, stored, paid_reference.as_deref(), now);
    }
    let (raw_amount, amount) = callback.amount.clone().unwrap_or_default();
    if amount != Some(stored.deposit.amount) {
        let review = Review {
            reason: "AMOUNT_MISMATCH".into(),
            expected_amount: stored.deposit.amount,
            received_amount: raw_amount,
            at: now,
        };
        let already = stored.deposit.review.as_ref().is_some_and(|r| {
            r.reason == review.reason && r.received_amount == review.received_amount
        });
        if !already {
            let mut deposit = stored.deposit;
            deposit.review = Some(review);
            store.save_deposit(&deposit, now)?;
        }
        return Ok(CallbackOutcome::AmountMismatch);
    }
    let id = stored.deposit.deposit_id.clone();
    let won = store.claim_payment(&id)?;
    // Re-read: a sweep deletes finished claims, so a late duplicate can win a fresh claim, and
    // a loser may be a second invoice paid for a credit already recorded.
    let stored = store.load(&id, now)?.ok_or(ApiError::DepositNotFound)?;
    if stored.credit.is_some() {
        return repeated_payment(store, stored, paid_reference.as_deref(), now);
    }
    if !won {
        return Ok(CallbackOutcome::Duplicate);
    }

    let mut credit = Credit::new_payment(
        now,
        callback.payment_method.clone(),
        callback.result_code.clone(),
        config.credit_lease,
    );
    credit.paid_reference = paid_reference;
    store.save_credit(&stored, &credit, now)?;
    let (outcome, deliveries) = deliver_inline(
        config,
        &stored.deposit,
        &credit,
        platform.http,
        platform.clock,
    );
    let done = platform.clock.now_ms();
    credit.record(&outcome, deliveries, AttemptKind::Inline, done, config);
    store.save_credit(&stored, &credit, done)?;
    Ok(if credit.is_credited() {
        CallbackOutcome::Credited
    } else {
        CallbackOutcome::CreditScheduled
    })
}

/// A PAID callback for a deposit already paid. A repeat of the paid invoice changes nothing;
/// a second invoice of the same deposit paid as well means money arrived twice: it is
/// credited once and the record lists the other as a refund due.
fn repeated_payment(
    store: &DepositStore,
    stored: StoredDeposit,
    paid_reference: Option<&str>,
    now: u64,
) -> Result<CallbackOutcome, ApiError> {
    let invoice = paid_reference.unwrap_or(&stored.deposit.reference);
    let credited = stored
        .credit
        .as_ref()
        .map_or(invoice, |c| c.reference(&stored.deposit));
    if invoice != credited {
        let (invoice, credited) = (invoice.to_string(), credited.to_string());
        let mut deposit = stored.deposit;
        if deposit.add_refund_due(&invoice, &credited, now) {
            store.save_deposit(&deposit, now)?;
        }
    }
    Ok(CallbackOutcome::Duplicate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<PaymentCallback, ApiError> {
        PaymentCallback::parse(body.as_bytes())
    }

    #[test]
    fn parses_the_documented_body() {
        let cb = parse(
            r#"{"orderId":"DEP1","reference":"R1","status":"PAID","resultCode":"00",
                "duitkuData":{"merchantOrderId":"DEP1","amount":"50000","paymentMethod":"VC"}}"#,
        )
        .unwrap();
        assert_eq!(cb.order_id.as_deref(), Some("DEP1"));
        assert_eq!(cb.status, CallbackStatus::Paid);
        assert_eq!(cb.amount, Some(("50000".into(), Some(50000))));
        assert_eq!(cb.payment_method.as_deref(), Some("VC"));
    }

    #[test]
    fn amount_forms() {
        let with = |amount: &str| {
            parse(&format!(
                r#"{{"orderId":"D","status":"PAID","duitkuData":{{"amount":{amount}}}}}"#
            ))
            .map(|cb| cb.amount.and_then(|a| a.1))
        };
        assert_eq!(with("50000").unwrap(), Some(50000));
        assert_eq!(with(r#""50000.00""#).unwrap(), Some(50000));
        assert_eq!(
            with(r#""50000.50""#).unwrap(),
            None,
            "kept, and will not match"
        );
        assert!(with(r#""5e4""#).is_err());
        assert!(with(r#""-5""#).is_err());
        assert!(with("true").is_err());
    }

    #[test]
    fn malformed_callbacks() {
        let cases = [
            "nope",
            "[]",
            r#"{"status":"PAID","duitkuData":{"amount":"1"}}"#,
            r#"{"orderId":"D","status":"paid","duitkuData":{"amount":"1"}}"#,
            r#"{"orderId":"D","status":"PENDING"}"#,
            r#"{"orderId":"D","status":"PAID"}"#,
            r#"{"orderId":"D","status":"PAID","resultCode":"01","duitkuData":{"amount":"1"}}"#,
            r#"{"orderId":"D","status":"PAID","duitkuData":{"amount":"1","merchantOrderId":"E"}}"#,
            r#"{"orderId":"bad id","status":"FAILED"}"#,
            r#"{"orderId":"D","reference":"has space","status":"FAILED"}"#,
            r#"{"orderId":"D","status":"FAILED","duitkuData":"x"}"#,
            r#"{"orderId":["D"],"status":"FAILED"}"#,
        ];
        for body in cases {
            let err = parse(body).expect_err(body);
            assert_eq!(err.status(), 400, "{body}");
        }
    }

    #[test]
    fn failed_needs_no_amount_and_reference_alone_locates() {
        let cb = parse(r#"{"reference":"R1","status":"FAILED","resultCode":"02"}"#).unwrap();
        assert_eq!(cb.order_id, None);
        assert_eq!(cb.status, CallbackStatus::Failed);
    }
}
