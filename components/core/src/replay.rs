//! Replay guard for callbacks: `X-Timestamp` skew and the form of `X-Nonce`.
//!
//! A nonce is used with `increment` on `nonce:{nonce}` (see
//! [`crate::store::DepositStore::claim_nonce`]) after the callback's work is stored, so a
//! callback that failed before recording anything leaves its nonce unused for the gateway's
//! retry. A replay of a used nonce is refused after one read, with no write. A nonce named by
//! the note or credit its callback wrote (its deposit living at least `nonce_ttl` more) is
//! removed with that deposit; any other is removed by the sweep one `nonce_ttl` after its use.

use crate::config::Replay;
use crate::error::{ApiError, ErrorCode};

/// Checks `X-Timestamp` (Unix ms) when the configuration enforces it, or `signed` (the
/// timestamped signature covers it, so it is always checked).
pub fn check_timestamp(
    header: Option<&str>,
    config: &Replay,
    now: u64,
    signed: bool,
) -> Result<(), ApiError> {
    if !config.enforce_timestamp && !signed {
        return Ok(());
    }
    let raw = header.ok_or(ApiError::TimestampRejected("X-Timestamp is required"))?;
    let sent: u64 = raw.trim().parse().map_err(|_| {
        ApiError::TimestampRejected("X-Timestamp must be Unix time in milliseconds")
    })?;
    if sent.abs_diff(now) > config.timestamp_skew_ms {
        return Err(ApiError::TimestampRejected(
            "X-Timestamp is outside the allowed clock skew",
        ));
    }
    Ok(())
}

/// Validates an `X-Nonce` value: 1 to 128 characters of `[A-Za-z0-9._~+/=-]`.
pub fn validate_nonce(nonce: &str) -> Result<(), ApiError> {
    let valid = (1..=128).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~+/=-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ApiError::field(
            ErrorCode::InvalidNonce,
            "X-Nonce",
            "X-Nonce must be 1 to 128 characters of [A-Za-z0-9._~+/=-]",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_config;

    #[test]
    fn timestamp_ignored_unless_enforced() {
        let config = test_config().replay().unwrap().clone();
        assert!(check_timestamp(None, &config, 1_000_000, false).is_ok());
        assert!(check_timestamp(Some("garbage"), &config, 1_000_000, false).is_ok());
    }

    #[test]
    fn timestamp_skew_when_enforced() {
        let mut config = test_config().replay().unwrap().clone();
        config.enforce_timestamp = true;
        config.timestamp_skew_ms = 300_000;
        let now = 10_000_000;
        let cases: &[(Option<&str>, bool)] = &[
            (Some("10000000"), true),
            (Some("9700000"), true),
            (Some("10300000"), true),
            (Some("9699999"), false),
            (Some("10300001"), false),
            (Some("10000"), false),
            (Some("-5"), false),
            (Some("1e7"), false),
            (Some(""), false),
            (None, false),
        ];
        for (header, ok) in cases {
            let result = check_timestamp(*header, &config, now, false);
            assert_eq!(result.is_ok(), *ok, "{header:?}");
            if let Err(e) = result {
                assert_eq!(e.status(), 401);
            }
        }
    }

    #[test]
    fn nonce_format() {
        assert!(validate_nonce("abc-123_x.y~z+/=").is_ok());
        for bad in ["", "with space", "ü", &"n".repeat(129)] {
            assert_eq!(validate_nonce(bad).unwrap_err().code(), "INVALID_NONCE");
        }
    }
}
