//! Every failure a request can meet, and the one place where failures become HTTP responses.

use serde_json::{json, Value};

use crate::config::ConfigError;
use crate::http::{HeaderProblem, Request, Response, MAX_BODY_BYTES};
use crate::ids::DEPOSIT_ID_RULE;
use crate::platform::StoreError;

/// Declares every error code once: the enum, its `error` text and its HTTP status, so the
/// list of codes ([`ErrorCode::ALL`]) cannot miss one.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $text:literal, $status:literal;)*) => {
        /// Every value of a JSON error's `error` field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(Self::$variant),*];

            /// The `error` value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }

            /// The HTTP status of an error with this code.
            pub fn status(self) -> u16 {
                match self {
                    $(Self::$variant => $status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not a JSON object.
    InvalidJson = "INVALID_JSON", 400;
    /// A header the route reads is repeated or not UTF-8.
    InvalidHeader = "INVALID_HEADER", 400;
    /// `userId` is missing or invalid.
    InvalidUserId = "INVALID_USER_ID", 400;
    /// `amount` is missing or not a whole number.
    InvalidAmount = "INVALID_AMOUNT", 400;
    /// `amount` is outside `min_amount`..`max_amount`.
    AmountOutOfRange = "AMOUNT_OUT_OF_RANGE", 400;
    /// `msisdn` is invalid.
    InvalidMsisdn = "INVALID_MSISDN", 400;
    /// `email` is invalid.
    InvalidEmail = "INVALID_EMAIL", 400;
    /// `productDetails` is invalid.
    InvalidProductDetails = "INVALID_PRODUCT_DETAILS", 400;
    /// A `depositId` breaks [`DEPOSIT_ID_RULE`].
    InvalidDepositId = "INVALID_DEPOSIT_ID", 400;
    /// A `reference` query is invalid.
    InvalidReference = "INVALID_REFERENCE", 400;
    /// Neither `depositId` nor `reference` given.
    MissingQuery = "MISSING_QUERY", 400;
    /// Both `depositId` and `reference` given.
    AmbiguousQuery = "AMBIGUOUS_QUERY", 400;
    /// `gateway` is not one of the gateway names.
    InvalidGateway = "INVALID_GATEWAY", 400;
    /// `gateway` names a gateway that is not in `gateways_enabled`.
    GatewayDisabled = "GATEWAY_DISABLED", 400;
    /// A callback body breaks the gateway's format.
    InvalidCallback = "INVALID_CALLBACK", 400;
    /// `X-Nonce` has the wrong form.
    InvalidNonce = "INVALID_NONCE", 400;
    /// A console query parameter (filter, page size, cursor) is invalid.
    InvalidFilter = "INVALID_FILTER", 400;
    /// An operator's `reason` is missing, empty or too long.
    InvalidReason = "INVALID_REASON", 400;
    /// Missing or wrong bearer token.
    Unauthorized = "UNAUTHORIZED", 401;
    /// Missing or wrong `X-Signature`, or a gateway's own signature or token.
    InvalidSignature = "INVALID_SIGNATURE", 401;
    /// `X-Timestamp` refused.
    InvalidTimestamp = "INVALID_TIMESTAMP", 401;
    /// No such deposit.
    DepositNotFound = "DEPOSIT_NOT_FOUND", 404;
    /// A gateway's callback route while that gateway's credentials are not set.
    GatewayNotConfigured = "GATEWAY_NOT_CONFIGURED", 404;
    /// No console route at this path.
    NotFound = "NOT_FOUND", 404;
    /// Method not served by the route.
    MethodNotAllowed = "METHOD_NOT_ALLOWED", 405;
    /// `X-Nonce` already used.
    NonceReused = "NONCE_REUSED", 409;
    /// The `depositId` exists with another user or amount.
    DepositConflict = "DEPOSIT_CONFLICT", 409;
    /// The callback's reference is not an invoice of its deposit.
    ReferenceMismatch = "REFERENCE_MISMATCH", 409;
    /// A notice from a gateway other than the deposit's.
    GatewayMismatch = "GATEWAY_MISMATCH", 409;
    /// A manual retry of a deposit that is not paid.
    NotPaid = "NOT_PAID", 409;
    /// A create of the same `depositId` is waiting for the gateway.
    CreateInProgress = "CREATE_IN_PROGRESS", 409;
    /// The earlier deposit with this `depositId` expired and is being removed.
    DepositExpired = "DEPOSIT_EXPIRED", 409;
    /// A delivery of this credit is in progress.
    CreditInProgress = "CREDIT_IN_PROGRESS", 409;
    /// An operator action on a deposit in a state it does not apply to (nothing changed).
    WrongState = "WRONG_STATE", 409;
    /// Body over the limit.
    BodyTooLarge = "BODY_TOO_LARGE", 413;
    /// Body is not `application/json`.
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE", 415;
    /// A variable is missing or invalid.
    ConfigError = "CONFIG_ERROR", 500;
    /// A stored record cannot be read.
    CorruptRecord = "CORRUPT_RECORD", 500;
    /// The payment gateway failed.
    PgError = "PG_ERROR", 502;
    /// The bot did not accept a manual retry's credit.
    CreditFailed = "CREDIT_FAILED", 502;
    /// A gateway's status API did not answer the question a notice raised (asked again later).
    GatewayUnconfirmed = "GATEWAY_UNCONFIRMED", 502;
    /// The key-value store failed.
    StoreUnavailable = "STORE_UNAVAILABLE", 503;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A request that cannot be served, with enough detail for a clear JSON error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not a JSON object.
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// A field is missing, of the wrong type or out of its allowed values.
    #[error("{message}")]
    InvalidField {
        /// Machine-readable code, e.g. `INVALID_AMOUNT`.
        code: ErrorCode,
        /// The field at fault.
        field: &'static str,
        /// What is wrong.
        message: String,
        /// Extra facts (allowed range, …).
        extra: Option<Value>,
    },
    /// A security header is repeated or not UTF-8.
    #[error("header `{name}` is {}", if *problem == HeaderProblem::Repeated { "repeated" } else { "not valid UTF-8" })]
    BadHeader {
        /// Header name.
        name: &'static str,
        /// What is wrong with it.
        problem: HeaderProblem,
    },
    /// Missing or wrong bearer token.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// Missing or wrong `X-Signature`.
    #[error("X-Signature is missing or does not match the request body")]
    InvalidSignature,
    /// A gateway notification whose proof of origin (named) is missing or wrong.
    #[error("{0} is missing or wrong: not sent by the gateway")]
    GatewayProof(&'static str),
    /// `X-Timestamp` missing while enforced, unparsable, or outside the allowed skew.
    #[error("{0}")]
    TimestampRejected(&'static str),
    /// `X-Nonce` was already used.
    #[error("X-Nonce was already used")]
    NonceReused,
    /// No deposit with that id or reference.
    #[error("deposit not found")]
    DepositNotFound,
    /// Method not served by this route.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Methods the route serves.
        allow: &'static str,
    },
    /// Another request is doing this right now; try again after `retry_after_s`.
    #[error("{message}")]
    InProgress {
        /// Machine-readable code.
        code: ErrorCode,
        /// What is in progress.
        message: &'static str,
        /// Seconds to wait (the `Retry-After` header).
        retry_after_s: u64,
    },
    /// A request that contradicts stored state.
    #[error("{message}")]
    Conflict {
        /// Machine-readable code.
        code: ErrorCode,
        /// What conflicts.
        message: String,
        /// Extra facts.
        detail: Option<Value>,
    },
    /// Body over the limit.
    #[error("request body exceeds {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
    /// Body is not `application/json`.
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// The payment gateway failed or answered nonsense.
    #[error("Gagal membuat invoice")]
    Gateway(Value),
    /// The bot did not accept a credit (manual retry).
    #[error("the bot did not accept the credit")]
    CreditFailed(Value),
    /// A gateway's callback route while its credentials are not set.
    #[error("this service has no credentials for {0}: it takes no notifications from it")]
    GatewayNotConfigured(crate::ids::GatewayName),
    /// A notice whose decisive fields are not signed, and whose gateway's status API gave
    /// no usable answer; the sweep asks again.
    #[error("the gateway's status API did not confirm this notification; it will be asked again")]
    GatewayUnconfirmed(Value),
    /// The configuration is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key-value store failed, or holds a record this service cannot read.
    #[error("{}", if matches!(.0, StoreError::Corrupt(_)) { "a stored record cannot be read" } else { "key-value store unavailable" })]
    Store(#[from] StoreError),
}

impl ApiError {
    /// A `depositId` that breaks [`DEPOSIT_ID_RULE`].
    pub fn invalid_deposit_id() -> Self {
        Self::field(ErrorCode::InvalidDepositId, "depositId", DEPOSIT_ID_RULE)
    }

    /// A callback's reference that is not an invoice of its deposit's era.
    pub fn reference_mismatch() -> Self {
        Self::Conflict {
            code: ErrorCode::ReferenceMismatch,
            message: "reference does not belong to this deposit".into(),
            detail: None,
        }
    }

    /// A notice from a gateway other than the deposit's.
    pub fn gateway_mismatch() -> Self {
        Self::Conflict {
            code: ErrorCode::GatewayMismatch,
            message: "this deposit is billed by another gateway".into(),
            detail: None,
        }
    }

    /// Shorthand for an invalid field.
    pub fn field(code: ErrorCode, field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            code,
            field,
            message: message.into(),
            extra: None,
        }
    }

    /// HTTP status (the code's).
    pub fn status(&self) -> u16 {
        self.code().status()
    }

    /// Machine-readable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidJson(_) => ErrorCode::InvalidJson,
            Self::InvalidField { code, .. }
            | Self::Conflict { code, .. }
            | Self::InProgress { code, .. } => *code,
            Self::BadHeader { .. } => ErrorCode::InvalidHeader,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::InvalidSignature | Self::GatewayProof(_) => ErrorCode::InvalidSignature,
            Self::TimestampRejected(_) => ErrorCode::InvalidTimestamp,
            Self::NonceReused => ErrorCode::NonceReused,
            Self::DepositNotFound => ErrorCode::DepositNotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::BodyTooLarge => ErrorCode::BodyTooLarge,
            Self::UnsupportedMediaType => ErrorCode::UnsupportedMediaType,
            Self::Gateway(_) => ErrorCode::PgError,
            Self::CreditFailed(_) => ErrorCode::CreditFailed,
            Self::GatewayNotConfigured(_) => ErrorCode::GatewayNotConfigured,
            Self::GatewayUnconfirmed(_) => ErrorCode::GatewayUnconfirmed,
            Self::Config(_) => ErrorCode::ConfigError,
            Self::Store(StoreError::Corrupt(_)) => ErrorCode::CorruptRecord,
            Self::Store(_) => ErrorCode::StoreUnavailable,
        }
    }

    fn detail(&self) -> Option<Value> {
        match self {
            Self::InvalidField { field, extra, .. } => {
                let mut detail = json!({ "field": field });
                if let (Some(Value::Object(more)), Value::Object(map)) = (extra, &mut detail) {
                    map.extend(more.clone());
                }
                Some(detail)
            }
            Self::BadHeader { name, .. } => Some(json!({ "header": name })),
            Self::MethodNotAllowed { allow } => Some(json!({ "allow": allow })),
            Self::Conflict { detail, .. } => detail.clone(),
            Self::Gateway(detail)
            | Self::CreditFailed(detail)
            | Self::GatewayUnconfirmed(detail) => Some(detail.clone()),
            Self::GatewayNotConfigured(gateway) => Some(json!({ "gateway": gateway.as_str() })),
            Self::Config(e) => Some(json!({ "variable": e.variable })),
            Self::BodyTooLarge => Some(json!({ "limitBytes": MAX_BODY_BYTES })),
            Self::InProgress { retry_after_s, .. } => Some(json!({ "retryAfter": retry_after_s })),
            _ => None,
        }
    }

    /// The JSON error response: `{"ok":false,"error","message","detail"?}`.
    pub fn into_response(self) -> Response {
        let mut body = json!({
            "ok": false,
            "error": self.code().as_str(),
            "message": self.to_string(),
        });
        if let (Some(detail), Value::Object(map)) = (self.detail(), &mut body) {
            map.insert("detail".into(), detail);
        }
        let response = Response::json(self.status(), &body);
        match self {
            Self::MethodNotAllowed { allow } => response.with_header("allow", allow),
            Self::InProgress { retry_after_s, .. } => {
                response.with_header("retry-after", &retry_after_s.to_string())
            }
            _ => response,
        }
    }
}

/// A single-valued header; repeated or non-UTF-8 values are refused.
pub fn header<'r>(request: &'r Request, name: &'static str) -> Result<Option<&'r str>, ApiError> {
    request
        .header(name)
        .map_err(|problem: HeaderProblem| ApiError::BadHeader { name, problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::InvalidJson("x".into()), 400, "INVALID_JSON"),
            (
                ApiError::field(ErrorCode::InvalidAmount, "amount", "bad"),
                400,
                "INVALID_AMOUNT",
            ),
            (ApiError::Unauthorized, 401, "UNAUTHORIZED"),
            (ApiError::InvalidSignature, 401, "INVALID_SIGNATURE"),
            (
                ApiError::GatewayProof("x-callback-token"),
                401,
                "INVALID_SIGNATURE",
            ),
            (ApiError::TimestampRejected("old"), 401, "INVALID_TIMESTAMP"),
            (ApiError::NonceReused, 409, "NONCE_REUSED"),
            (ApiError::DepositNotFound, 404, "DEPOSIT_NOT_FOUND"),
            (
                ApiError::MethodNotAllowed { allow: "GET" },
                405,
                "METHOD_NOT_ALLOWED",
            ),
            (ApiError::BodyTooLarge, 413, "BODY_TOO_LARGE"),
            (
                ApiError::UnsupportedMediaType,
                415,
                "UNSUPPORTED_MEDIA_TYPE",
            ),
            (ApiError::Gateway(json!({})), 502, "PG_ERROR"),
            (
                ApiError::Config(ConfigError {
                    variable: "max_amount",
                    problem: "bad".into(),
                }),
                500,
                "CONFIG_ERROR",
            ),
            (
                ApiError::Store(StoreError::Other("io".into())),
                503,
                "STORE_UNAVAILABLE",
            ),
            (
                ApiError::Store(StoreError::Corrupt("deposit:D1".into())),
                500,
                "CORRUPT_RECORD",
            ),
            (
                ApiError::InProgress {
                    code: ErrorCode::CreateInProgress,
                    message: "busy",
                    retry_after_s: 3,
                },
                409,
                "CREATE_IN_PROGRESS",
            ),
        ];
        for (err, status, code) in cases {
            let response = err.into_response();
            let body = response.json_body();
            assert_eq!(response.status, status, "{body}");
            assert_eq!(body["ok"], false);
            assert_eq!(body["error"], code);
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }

    #[test]
    fn config_error_names_the_variable() {
        let body = ApiError::Config(ConfigError {
            variable: "shared_secret",
            problem: "must not be empty".into(),
        })
        .into_response()
        .json_body();
        assert_eq!(body["detail"]["variable"], "shared_secret");
        assert!(body["message"].as_str().unwrap().contains("shared_secret"));
    }

    #[test]
    fn gateway_error_keeps_the_indonesian_message() {
        let body = ApiError::Gateway(json!({"status": 500}))
            .into_response()
            .json_body();
        assert_eq!(body["message"], "Gagal membuat invoice");
        assert_eq!(body["detail"]["status"], 500);
    }

    #[test]
    fn in_progress_says_when_to_retry() {
        let response = ApiError::InProgress {
            code: ErrorCode::CreateInProgress,
            message: "a create of this depositId is waiting for the gateway",
            retry_after_s: 7,
        }
        .into_response();
        assert_eq!(response.header("retry-after"), Some("7"));
        assert_eq!(response.json_body()["detail"]["retryAfter"], 7);
    }

    #[test]
    fn method_not_allowed_sets_allow() {
        let response = ApiError::MethodNotAllowed {
            allow: "GET, OPTIONS",
        }
        .into_response();
        assert_eq!(response.header("allow"), Some("GET, OPTIONS"));
    }
}
