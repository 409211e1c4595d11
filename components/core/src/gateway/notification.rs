//! The Central PG's PAID/FAILED notification body, validated.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::ids::{DepositId, GatewayName, Reference};
use crate::schema::whole_number;

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
    /// The gateway it came from; it must be the deposit's.
    pub gateway: GatewayName,
    /// Our deposit id.
    pub order_id: Option<DepositId>,
    /// Gateway reference.
    pub reference: Option<Reference>,
    /// PAID or FAILED.
    pub status: CallbackStatus,
    /// Gateway result code.
    pub result_code: Option<String>,
    /// Amount as sent, and its integer value when it is a whole number.
    pub amount: Option<(String, Option<u64>)>,
    /// Payment method.
    pub payment_method: Option<String>,
    /// For a failure: the invoice can no longer be paid (see [`crate::deposit::note::NoteKind`]).
    pub closed: bool,
}

/// The callback body's fields as sent, before validation; other fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackBody {
    order_id: Option<Value>,
    reference: Option<Value>,
    status: Option<Value>,
    result_code: Option<Value>,
    duitku_data: Option<Value>,
}

/// The callback's `duitkuData` fields as sent; other fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayData {
    merchant_order_id: Option<Value>,
    amount: Option<Value>,
    payment_method: Option<Value>,
}

impl PaymentCallback {
    /// Parses and validates the callback body.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let fields: CallbackBody = crate::schema::json_object(body)?;
        let data: GatewayData = match fields.duitku_data {
            None => GatewayData::default(),
            Some(Value::Object(data)) => serde_json::from_value(Value::Object(data))
                .map_err(|e| ApiError::InvalidJson(e.to_string()))?,
            Some(_) => {
                return Err(ApiError::field(
                    ErrorCode::InvalidCallback,
                    "duitkuData",
                    "duitkuData must be an object",
                ))
            }
        };
        let order_id = value_text(fields.order_id.as_ref(), "orderId")?;
        if order_id
            .as_deref()
            .is_some_and(|id| DepositId::parse(id).is_none())
        {
            return Err(ApiError::field(
                ErrorCode::InvalidCallback,
                "orderId",
                "orderId is not a valid deposit id",
            ));
        }
        let merchant_order_id = value_text(data.merchant_order_id.as_ref(), "merchantOrderId")?;
        if let (Some(a), Some(b)) = (&order_id, &merchant_order_id) {
            if a != b {
                return Err(ApiError::field(
                    ErrorCode::InvalidCallback,
                    "duitkuData.merchantOrderId",
                    "merchantOrderId differs from orderId",
                ));
            }
        }
        let order_id = order_id
            .or(merchant_order_id)
            .and_then(|id| DepositId::parse(&id));
        let reference = match value_text(fields.reference.as_ref(), "reference")? {
            None => None,
            Some(r) => Some(Reference::parse(&r).ok_or_else(|| {
                ApiError::field(
                    ErrorCode::InvalidCallback,
                    "reference",
                    "reference is not valid",
                )
            })?),
        };
        if order_id.is_none() && reference.is_none() {
            return Err(ApiError::field(
                ErrorCode::InvalidCallback,
                "orderId",
                "orderId or reference is required",
            ));
        }

        let status = match fields.status.as_ref().and_then(Value::as_str) {
            Some("PAID") => CallbackStatus::Paid,
            Some("FAILED") => CallbackStatus::Failed,
            _ => {
                return Err(ApiError::field(
                    ErrorCode::InvalidCallback,
                    "status",
                    "status must be \"PAID\" or \"FAILED\"",
                ))
            }
        };
        let result_code = value_text(fields.result_code.as_ref(), "resultCode")?;
        let amount = amount(data.amount.as_ref())?;
        if status == CallbackStatus::Paid {
            if result_code.as_deref().is_some_and(|code| code != "00") {
                return Err(ApiError::field(
                    ErrorCode::InvalidCallback,
                    "resultCode",
                    "a PAID callback must have resultCode \"00\"",
                ));
            }
            if amount.is_none() {
                return Err(ApiError::field(
                    ErrorCode::InvalidCallback,
                    "duitkuData.amount",
                    "a PAID callback must carry duitkuData.amount",
                ));
            }
        }
        Ok(Self {
            gateway: GatewayName::Central,
            order_id,
            reference,
            status,
            result_code,
            amount,
            payment_method: value_text(data.payment_method.as_ref(), "paymentMethod")?,
            closed: false,
        })
    }
}

/// An optional string field of a JSON object (see [`value_text`]), for the adapters that
/// read a gateway's notification as a map.
pub(crate) fn text(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ApiError> {
    value_text(fields.get(field), field)
}

/// An optional string field (numbers are accepted and kept as text, a whole number as its
/// integer); at most 255 characters.
fn value_text(value: Option<&Value>, field: &'static str) -> Result<Option<String>, ApiError> {
    let value = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => whole_number(n).unwrap_or_else(|| n.clone()).to_string(),
        Some(_) => {
            return Err(ApiError::field(
                ErrorCode::InvalidCallback,
                field,
                format!("{field} must be a string"),
            ))
        }
    };
    if value.chars().count() > 255 || value.chars().any(char::is_control) {
        return Err(ApiError::field(
            ErrorCode::InvalidCallback,
            field,
            format!("{field} is not valid"),
        ));
    }
    Ok((!value.is_empty()).then_some(value))
}

/// `duitkuData.amount`: an integer or a decimal string such as `"150000"` or `"150000.00"`.
fn amount(value: Option<&Value>) -> Result<Option<(String, Option<u64>)>, ApiError> {
    let Some(raw) = value_text(value, "amount")? else {
        return Ok(None);
    };
    parse_amount("duitkuData.amount", raw).map(Some)
}

/// An amount as a gateway sent it (`"150000"`, `"150000.00"`, `150000`), kept as sent, with
/// its integer value when it is a whole number; anything else is a 400 naming `field`.
pub(crate) fn parse_amount(
    field: &'static str,
    raw: String,
) -> Result<(String, Option<u64>), ApiError> {
    let (whole, fraction) = raw.split_once('.').unwrap_or((&raw, ""));
    let numeric = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit());
    if !numeric {
        return Err(ApiError::field(
            ErrorCode::InvalidCallback,
            field,
            "amount must be a number",
        ));
    }
    let value = fraction
        .bytes()
        .all(|b| b == b'0')
        .then(|| whole.parse::<u64>().ok())
        .flatten();
    Ok((raw, value))
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
        assert_eq!(cb.order_id.as_ref().map(DepositId::as_str), Some("DEP1"));
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

    /// A whole number is its integer text however it is written (JSON has one number type).
    #[test]
    fn whole_numbers_are_read_as_integers() {
        let cb = parse(
            r#"{"orderId":123.0,"status":"PAID","duitkuData":{"merchantOrderId":123,"amount":5e4}}"#,
        )
        .unwrap();
        assert_eq!(cb.order_id.as_ref().map(DepositId::as_str), Some("123"));
        assert_eq!(cb.amount, Some(("50000".into(), Some(50000))));
        let by_merchant = parse(r#"{"status":"FAILED","duitkuData":{"merchantOrderId":-8300.0}}"#);
        assert_eq!(
            by_merchant
                .unwrap()
                .order_id
                .as_ref()
                .map(DepositId::as_str),
            Some("-8300")
        );
    }

    #[test]
    fn failed_needs_no_amount_and_reference_alone_locates() {
        let cb = parse(r#"{"reference":"R1","status":"FAILED","resultCode":"02"}"#).unwrap();
        assert_eq!(cb.order_id, None);
        assert_eq!(cb.status, CallbackStatus::Failed);
    }
}
