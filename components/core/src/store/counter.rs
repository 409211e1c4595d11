//! Reading a counter written by `increment`. Spin stores it as 8 little-endian bytes on SQLite
//! and as decimal text on Redis (`INCRBY`); the two never look alike for any count this
//! service reaches (8 bytes of ASCII digits as little-endian would be above 3·10^18).

use crate::platform::StoreError;

/// The value of a counter's stored bytes.
pub fn decode(key: &str, bytes: &[u8]) -> Result<i64, StoreError> {
    let text = std::str::from_utf8(bytes).ok().filter(|t| {
        let digits = t.strip_prefix('-').unwrap_or(t);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    if let Some(text) = text {
        return text
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("{key}: counter out of range")));
    }
    let raw: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{key}: not a counter")))?;
    Ok(i64::from_le_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_encodings() {
        assert_eq!(decode("k", &7i64.to_le_bytes()).unwrap(), 7);
        assert_eq!(decode("k", &(1i64 << 40).to_le_bytes()).unwrap(), 1 << 40);
        assert_eq!(decode("k", b"7").unwrap(), 7);
        assert_eq!(
            decode("k", b"12345678").unwrap(),
            12_345_678,
            "8 digits are text"
        );
        assert_eq!(decode("k", b"-3").unwrap(), -3);
        for bad in [&b""[..], b"x", b"1.5", b"{\"exp\":1}"] {
            assert!(decode("k", bad).is_err(), "{bad:?}");
        }
    }
}
