//! `POST /deposit/create`: the request body, validated.

use serde::Deserialize;
use serde_json::Value;

use crate::config::Amounts;
use crate::error::{ApiError, ErrorCode};
use crate::ids::{DepositId, GatewayName};
use crate::schema::whole_number;

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
    pub deposit_id: Option<DepositId>,
    /// The gateway asked for; the configured default when absent.
    pub gateway: Option<GatewayName>,
}

/// The create body's fields as sent, before validation; other fields are ignored. Its field
/// names are the ones the API documents (see `crate::schema`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDepositBody {
    user_id: Option<Value>,
    amount: Option<Value>,
    msisdn: Option<Value>,
    email: Option<Value>,
    product_details: Option<Value>,
    deposit_id: Option<Value>,
    gateway: Option<Value>,
}

impl CreateDeposit {
    /// Parses and validates the JSON body.
    pub fn parse(body: &[u8], amounts: &Amounts) -> Result<Self, ApiError> {
        let body: CreateDepositBody = crate::schema::json_object(body)?;
        Ok(Self {
            user_id: parse_user_id(body.user_id.as_ref())?,
            amount: parse_amount(body.amount.as_ref(), amounts)?,
            msisdn: optional_string(body.msisdn.as_ref(), "msisdn", ErrorCode::InvalidMsisdn, 20)?
                .map(|m| validate_msisdn(&m).map(|_| m))
                .transpose()?,
            email: optional_string(body.email.as_ref(), "email", ErrorCode::InvalidEmail, 255)?
                .map(|e| validate_email(&e).map(|_| e))
                .transpose()?,
            product_details: optional_string(
                body.product_details.as_ref(),
                "productDetails",
                ErrorCode::InvalidProductDetails,
                255,
            )?,
            deposit_id: parse_deposit_id(body.deposit_id.as_ref())?,
            gateway: optional_string(
                body.gateway.as_ref(),
                "gateway",
                ErrorCode::InvalidGateway,
                16,
            )?
            .map(|name| {
                GatewayName::parse(&name).ok_or_else(|| {
                    ApiError::field(
                        ErrorCode::InvalidGateway,
                        "gateway",
                        "gateway must be one of central, duitku, midtrans, xendit, tripay",
                    )
                })
            })
            .transpose()?,
        })
    }
}

fn parse_user_id(value: Option<&Value>) -> Result<String, ApiError> {
    const CODE: ErrorCode = ErrorCode::InvalidUserId;
    let user_id = match value {
        None | Some(Value::Null) => {
            return Err(ApiError::field(CODE, "userId", "userId is required"))
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => whole_number(n).map(|whole| whole.to_string()),
        Some(_) => None,
    };
    let Some(user_id) = user_id else {
        return Err(ApiError::field(
            CODE,
            "userId",
            "userId must be a string or an integer",
        ));
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

fn parse_amount(value: Option<&Value>, config: &Amounts) -> Result<u64, ApiError> {
    let amount = match value {
        None | Some(Value::Null) => {
            return Err(ApiError::field(
                ErrorCode::InvalidAmount,
                "amount",
                "amount is required",
            ))
        }
        Some(Value::Number(n)) => whole_number(n).and_then(|whole| whole.as_u64()),
        Some(_) => None,
    }
    .ok_or_else(|| {
        ApiError::field(
            ErrorCode::InvalidAmount,
            "amount",
            "amount must be a whole number of rupiah",
        )
    })?;
    if amount < config.min_amount || amount > config.max_amount {
        return Err(ApiError::InvalidField {
            code: ErrorCode::AmountOutOfRange,
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
    value: Option<&Value>,
    field: &'static str,
    code: ErrorCode,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    match value {
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
            ErrorCode::InvalidMsisdn,
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
            ErrorCode::InvalidEmail,
            "email",
            "email is not a valid address",
        ))
    }
}

fn parse_deposit_id(value: Option<&Value>) -> Result<Option<DepositId>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) => DepositId::parse(id)
            .map(Some)
            .ok_or_else(ApiError::invalid_deposit_id),
        Some(_) => Err(ApiError::invalid_deposit_id()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_config;

    fn parse(body: &str) -> Result<CreateDeposit, ApiError> {
        CreateDeposit::parse(body.as_bytes(), test_config().amounts().unwrap())
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
        assert_eq!(
            full.deposit_id.as_ref().map(DepositId::as_str),
            Some("my_ID-1")
        );

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

    /// JSON has one number type: `50000.0` and `5e4` are the whole number 50000 (Python's
    /// `json.dumps` writes a float amount so), and JSON Schema's `integer` admits them too.
    #[test]
    fn whole_numbers_written_as_decimals_are_integers() {
        let ok = parse(r#"{"userId":123.0,"amount":50000.0}"#).unwrap();
        assert_eq!((ok.user_id.as_str(), ok.amount), ("123", 50000));
        assert_eq!(
            parse(r#"{"userId":-5e2,"amount":5e4}"#).unwrap().user_id,
            "-500"
        );
        for (body, code) in [
            (r#"{"userId":"u","amount":50000.5}"#, "INVALID_AMOUNT"),
            (r#"{"userId":"u","amount":1e300}"#, "INVALID_AMOUNT"),
            (r#"{"userId":"u","amount":-0.0}"#, "AMOUNT_OUT_OF_RANGE"),
            (r#"{"userId":1e300,"amount":5000}"#, "INVALID_USER_ID"),
            (r#"{"userId":0.5,"amount":5000}"#, "INVALID_USER_ID"),
        ] {
            assert_eq!(parse(body).unwrap_err().code(), code, "{body}");
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
}
