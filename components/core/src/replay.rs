//! Replay guard for callbacks: `X-Timestamp` skew and single-use `X-Nonce`.
//!
//! A nonce is claimed with `increment`, the only store operation Spin makes atomic. Time is cut
//! into buckets of `nonce_ttl`; a claim at bucket `b` increments `nonce:{b}:{n}` and
//! `nonce:{b+1}:{n}` and wins only if both return 1. Any two claims less than one bucket apart
//! share a key, so exactly one of them wins, and a nonce is remembered for between one and two
//! TTLs. Old buckets are deleted by the credit-retry sweep.

use crate::config::Config;
use crate::error::ApiError;
use crate::platform::{KeyValue, StoreError};

pub(crate) const NONCE_PREFIX: &str = "nonce:";

/// Checks `X-Timestamp` (Unix ms) when the configuration enforces it.
pub fn check_timestamp(header: Option<&str>, config: &Config, now: u64) -> Result<(), ApiError> {
    if !config.enforce_timestamp {
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
            "INVALID_NONCE",
            "X-Nonce",
            "X-Nonce must be 1 to 128 characters of [A-Za-z0-9._~+/=-]",
        ))
    }
}

fn nonce_key(bucket: u64, nonce: &str) -> String {
    format!("{NONCE_PREFIX}{bucket}:{nonce}")
}

/// Claims `nonce`; `Ok(false)` means it was used within the last TTL.
///
/// A nonce already seen is refused after two reads and no write, so a replay changes
/// nothing; only a first use reaches the increments, which settle concurrent first uses.
pub fn claim_nonce(
    claims: &dyn KeyValue,
    nonce: &str,
    now: u64,
    ttl_ms: u64,
) -> Result<bool, StoreError> {
    let bucket = now / ttl_ms.max(1);
    let keys = [nonce_key(bucket, nonce), nonce_key(bucket + 1, nonce)];
    for key in &keys {
        if claims.get(key)?.is_some() {
            return Ok(false);
        }
    }
    for key in &keys {
        if claims.increment(key, 1)? != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `key` is a nonce key of a bucket that no claim near `now` can touch (one bucket of
/// margin covers a claimant that read the clock just before a boundary).
pub fn is_expired_nonce_key(key: &str, now: u64, ttl_ms: u64) -> bool {
    let bucket = key
        .strip_prefix(NONCE_PREFIX)
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(bucket, _)| bucket.parse::<u64>().ok());
    bucket.is_some_and(|b| b.saturating_add(1) < now / ttl_ms.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_config, MemoryStore};

    #[test]
    fn timestamp_ignored_unless_enforced() {
        let config = test_config();
        assert!(check_timestamp(None, &config, 1_000_000).is_ok());
        assert!(check_timestamp(Some("garbage"), &config, 1_000_000).is_ok());
    }

    #[test]
    fn timestamp_skew_when_enforced() {
        let mut config = test_config();
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
            let result = check_timestamp(*header, &config, now);
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

    #[test]
    fn nonce_is_single_use_within_the_ttl() {
        let store = MemoryStore::default();
        let ttl = 600_000;
        assert!(claim_nonce(&store, "n1", 1_000, ttl).unwrap());
        assert!(!claim_nonce(&store, "n1", 1_001, ttl).unwrap());
        assert!(
            claim_nonce(&store, "n2", 1_002, ttl).unwrap(),
            "other nonces unaffected"
        );
        // Next bucket: still remembered.
        assert!(!claim_nonce(&store, "n1", ttl + 5, ttl).unwrap());
    }

    #[test]
    fn nonce_remembered_at_least_one_ttl_across_a_bucket_boundary() {
        let ttl = 600_000;
        for first in [0, 1, ttl / 2, ttl - 1] {
            let store = MemoryStore::default();
            assert!(claim_nonce(&store, "n", first, ttl).unwrap());
            for later in [first + 1, ttl, first + ttl - 1] {
                assert!(
                    !claim_nonce(&store, "n", later, ttl).unwrap(),
                    "{first} → {later}"
                );
            }
        }
    }

    #[test]
    fn a_refused_replay_writes_nothing() {
        let store = MemoryStore::default();
        assert!(claim_nonce(&store, "n", 10, 1_000).unwrap());
        let writes = store.write_ops();
        let before = store.snapshot();
        assert!(!claim_nonce(&store, "n", 20, 1_000).unwrap());
        assert!(!claim_nonce(&store, "n", 1_020, 1_000).unwrap());
        assert_eq!((store.write_ops(), store.snapshot()), (writes, before));
    }

    #[test]
    fn nonce_usable_again_after_two_ttls() {
        let store = MemoryStore::default();
        let ttl = 1_000;
        assert!(claim_nonce(&store, "n", 500, ttl).unwrap());
        assert!(claim_nonce(&store, "n", 2_000, ttl).unwrap());
    }

    #[test]
    fn concurrent_claims_across_a_boundary_have_one_winner() {
        // Claims at buckets b and b+1 interleaved in every order: exactly one wins.
        let ttl = 1_000;
        let orders: [[(u64, usize); 4]; 3] = [
            [(999, 0), (999, 1), (1_000, 0), (1_000, 1)],
            [(1_000, 0), (1_000, 1), (999, 0), (999, 1)],
            [(999, 0), (1_000, 0), (1_000, 1), (999, 1)],
        ];
        for order in orders {
            let store = MemoryStore::default();
            let mut results = [None, None];
            let mut first_ok = [true, true];
            for (now, step) in order {
                let who = usize::from(now == 1_000);
                let key = nonce_key(now / ttl + step as u64, "n");
                if step == 0 {
                    first_ok[who] = store.increment(&key, 1).unwrap() == 1;
                } else {
                    let second = store.increment(&key, 1).unwrap() == 1;
                    results[who] = Some(first_ok[who] && second);
                }
            }
            let winners = results.iter().filter(|r| **r == Some(true)).count();
            assert_eq!(winners, 1, "{order:?}");
        }
    }

    #[test]
    fn expired_nonce_keys() {
        let ttl = 1_000;
        assert!(is_expired_nonce_key("nonce:2:abc", 4_500, ttl));
        assert!(!is_expired_nonce_key("nonce:3:abc", 4_500, ttl));
        assert!(!is_expired_nonce_key("nonce:4:abc", 4_500, ttl));
        assert!(!is_expired_nonce_key("nonce:5:abc", 4_500, ttl));
        assert!(!is_expired_nonce_key("paid:DEP1", 4_500, ttl));
        assert!(!is_expired_nonce_key("nonce:x:abc", 4_500, ttl));
    }
}
