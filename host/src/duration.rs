//! Durations on the command line: `2s`, `500ms`, `1m`, or a bare number of seconds.

use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Parses `text` (`250ms`, `2s`, `1.5s`, `1m`, `2`): at least 1 ms.
pub fn parse(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (text, 1_000.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("{text:?} is not a duration (e.g. 2s, 500ms, 1m)"))?;
    let ms = value * unit_ms;
    if !ms.is_finite() || !(1.0..=86_400_000.0).contains(&ms) {
        bail!("{text:?} must be between 1 ms and 24 h");
    }
    Ok(Duration::from_micros((ms * 1_000.0).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1_500));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("3").unwrap(), Duration::from_secs(3));
        for bad in ["", "s", "-1s", "0", "0ms", "abc", "2h", "NaNs"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
