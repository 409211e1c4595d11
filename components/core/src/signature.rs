//! Shared-secret authentication: bearer tokens and HMAC-SHA256 body signatures, both compared
//! in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Auth, Secret, SignatureScheme};

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.expose(), body))
}

fn hmac_sha256(key: &[u8], body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Whether `signature_hex` is the HMAC of `body` under any of `secrets`.
///
/// The hex is decoded first (case-insensitive); the MAC comparison is constant-time and every
/// secret is tried, so timing reveals neither which secret matched nor how much of the MAC did.
pub fn verify_signature<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    body: &[u8],
    signature_hex: &str,
) -> bool {
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        matched |= hmac_sha256(secret.expose(), body)[..].ct_eq(&given[..]);
    }
    matched.into()
}

/// Whether the `Authorization` header value is `Bearer <secret>` for any of `secrets`.
///
/// Both sides are hashed before the constant-time comparison, so neither the token's content
/// nor its length leaks through timing.
pub fn verify_bearer<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    authorization: Option<&str>,
) -> bool {
    let Some(token) = authorization.and_then(bearer_token) else {
        return false;
    };
    let given = Sha256::digest(token.as_bytes());
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        matched |= Sha256::digest(secret.expose()).ct_eq(&given);
    }
    matched.into()
}

/// Whether `given` equals `secret` (a static token such as Xendit's `x-callback-token`),
/// compared like [`verify_bearer`]: hashed first, then in constant time.
pub fn token_matches(secret: &Secret, given: &str) -> bool {
    secret.matches(given)
}

/// Whether `signature_hex` (either case) is the hex of `expected`, a digest computed here
/// (MD5 or SHA-512 signatures that hash a secret into the signed string); constant-time.
pub fn digest_matches(expected: &[u8], signature_hex: &str) -> bool {
    let Ok(given) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    expected.ct_eq(&given[..]).into()
}

/// The token of an `Authorization: Bearer …` value.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// What `X-Signature` is computed over under `scheme`: the body, or
/// `{timestamp}.{nonce}.{body}`.
pub fn signed_content(
    scheme: SignatureScheme,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    match scheme {
        SignatureScheme::Body => body.to_vec(),
        SignatureScheme::Timestamped => {
            let mut content = format!("{timestamp}.{nonce}.").into_bytes();
            content.extend_from_slice(body);
            content
        }
    }
}

/// Headers of every signed outbound call: bearer, signature over the exact body (and, under
/// the timestamped scheme, the timestamp and `nonce`), timestamp.
pub fn signed_headers(auth: &Auth, body: &[u8], now: u64, nonce: &str) -> Vec<(String, String)> {
    let timestamp = now.to_string();
    let content = signed_content(auth.scheme, &timestamp, nonce, body);
    let mut headers = vec![
        ("content-type".into(), "application/json".into()),
        (
            "authorization".into(),
            format!(
                "Bearer {}",
                String::from_utf8_lossy(auth.shared_secret.expose())
            ),
        ),
        ("x-signature".into(), sign(&auth.shared_secret, &content)),
        ("x-timestamp".into(), timestamp),
    ];
    if auth.scheme == SignatureScheme::Timestamped {
        headers.push(("x-nonce".into(), nonce.to_string()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::new(s)
    }

    /// RFC 4231 test cases 1, 2, 3, 4, 6 and 7 (HMAC-SHA-256).
    #[test]
    fn rfc4231_vectors() {
        let ascii = |s: &str| s.as_bytes().to_vec();
        let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
            (
                vec![0x0b; 20],
                ascii("Hi There"),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                ascii("Jefe"),
                ascii("what do ya want for nothing?"),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                (1u8..=25).collect(),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                ascii("Test Using Larger Than Block-Size Key - Hash Key First"),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                ascii(
                    "This is a test using a larger than block-size key and a larger than \
                     block-size data. The key needs to be hashed before being used by the HMAC \
                     algorithm.",
                ),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            assert_eq!(hex::encode(hmac_sha256(&key, &data)), expected);
        }
    }

    /// Cross-check against an independent implementation: `openssl dgst -sha256 -hmac`.
    #[test]
    fn matches_openssl() {
        let body = br#"{"orderId":"DEP1","status":"PAID","amount":50000}"#;
        let key = "rahasia-bersama";
        let output = std::process::Command::new("openssl")
            .args(["dgst", "-sha256", "-hmac", key, "-r"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().expect("stdin").write_all(body)?;
                child.wait_with_output()
            })
            .expect("openssl must be installed for this test");
        let stdout = String::from_utf8(output.stdout).unwrap();
        let openssl_hex = stdout.split_whitespace().next().unwrap();
        assert_eq!(sign(&secret(key), body), openssl_hex);
    }

    #[test]
    fn verify_accepts_any_configured_secret_and_either_hex_case() {
        let body = b"raw body bytes";
        let old = secret("old");
        let new = secret("new");
        let sig = sign(&old, body);
        assert!(verify_signature([&new, &old], body, &sig));
        assert!(verify_signature([&new, &old], body, &sig.to_uppercase()));
        assert!(!verify_signature([&new], body, &sig));
    }

    #[test]
    fn verify_rejects_tampering() {
        let s = secret("k");
        let body = br#"{"amount":50000}"#;
        let sig = sign(&s, body);
        let cases: &[(&[u8], &str)] = &[
            (br#"{"amount":50001}"#, &sig),
            (br#"{"amount": 50000}"#, &sig),
            (body, &sig[..62]),
            (body, ""),
            (body, "zz"),
            (body, &format!("{sig}00")),
        ];
        for (b, sg) in cases {
            assert!(!verify_signature([&s], b, sg), "{sg}");
        }
    }

    #[test]
    fn static_tokens_and_digests_compare_exactly() {
        let token = secret("cb-token");
        assert!(token_matches(&token, "cb-token"));
        for bad in ["", "cb-toke", "cb-token ", "CB-TOKEN"] {
            assert!(!token_matches(&token, bad), "{bad:?}");
        }
        // printf 'abc' | openssl dgst -md5
        let md5_abc = hex::decode("900150983cd24fb0d6963f7d28e17f72").unwrap();
        assert!(digest_matches(&md5_abc, "900150983cd24fb0d6963f7d28e17f72"));
        assert!(digest_matches(&md5_abc, "900150983CD24FB0D6963F7D28E17F72"));
        for bad in [
            "",
            "zz",
            "900150983cd24fb0d6963f7d28e17f7",
            "900150983cd24fb0d6963f7d28e17f73",
        ] {
            assert!(!digest_matches(&md5_abc, bad), "{bad:?}");
        }
    }

    #[test]
    fn bearer_parsing_and_comparison() {
        let s = secret("tok-123");
        assert!(verify_bearer([&s], Some("Bearer tok-123")));
        assert!(verify_bearer([&s], Some("bearer   tok-123 ")));
        for bad in [
            None,
            Some(""),
            Some("tok-123"),
            Some("Basic tok-123"),
            Some("Bearer "),
            Some("Bearer tok-1234"),
            Some("Bearer tok-12"),
        ] {
            assert!(!verify_bearer([&s], bad), "{bad:?}");
        }
    }
}
