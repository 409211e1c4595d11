//! Every failure a request can meet, and the one place where failures become HTTP responses.

use serde_json::{json, Value};

use crate::config::ConfigError;
use crate::http::{HeaderProblem, Request, Response, MAX_BODY_BYTES};
use crate::ids::DEPOSIT_ID_RULE;
use crate::platform::StoreError;

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
        code: &'static str,
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
        code: &'static str,
        /// What is in progress.
        message: &'static str,
        /// Seconds to wait (the `Retry-After` header).
        retry_after_s: u64,
    },
    /// A request that contradicts stored state.
    #[error("{message}")]
    Conflict {
        /// Machine-readable code.
        code: &'static str,
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
        Self::field("INVALID_DEPOSIT_ID", "depositId", DEPOSIT_ID_RULE)
    }

    /// Shorthand for an invalid field.
    pub fn field(code: &'static str, field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidField {
            code,
            field,
            message: message.into(),
            extra: None,
        }
    }

    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidJson(_) | Self::InvalidField { .. } | Self::BadHeader { .. } => 400,
            Self::Unauthorized
            | Self::InvalidSignature
            | Self::GatewayProof(_)
            | Self::TimestampRejected(_) => 401,
            Self::DepositNotFound => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::NonceReused | Self::Conflict { .. } | Self::InProgress { .. } => 409,
            Self::BodyTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Config(_) | Self::Store(StoreError::Corrupt(_)) => 500,
            Self::Gateway(_) | Self::CreditFailed(_) => 502,
            Self::Store(_) => 503,
        }
    }

    /// Machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "INVALID_JSON",
            Self::InvalidField { code, .. }
            | Self::Conflict { code, .. }
            | Self::InProgress { code, .. } => code,
            Self::BadHeader { .. } => "INVALID_HEADER",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::InvalidSignature | Self::GatewayProof(_) => "INVALID_SIGNATURE",
            Self::TimestampRejected(_) => "INVALID_TIMESTAMP",
            Self::NonceReused => "NONCE_REUSED",
            Self::DepositNotFound => "DEPOSIT_NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::BodyTooLarge => "BODY_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::Gateway(_) => "PG_ERROR",
            Self::CreditFailed(_) => "CREDIT_FAILED",
            Self::Config(_) => "CONFIG_ERROR",
            Self::Store(StoreError::Corrupt(_)) => "CORRUPT_RECORD",
            Self::Store(_) => "STORE_UNAVAILABLE",
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
            Self::Gateway(detail) | Self::CreditFailed(detail) => Some(detail.clone()),
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
            "error": self.code(),
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
                ApiError::field("INVALID_AMOUNT", "amount", "bad"),
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
                    code: "CREATE_IN_PROGRESS",
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
            code: "CREATE_IN_PROGRESS",
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
