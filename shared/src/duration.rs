//! Durations as people write them in Sluice's resources: `30s`, `5m`, `1h30m`, `500ms`, `2h`
//! (Go's `time.ParseDuration` subset that Flux and Argo CD users type). Hand-written because the
//! grammar is four units wide; humantime accepts a different, wordier set and would let
//! `1 hour 3 min` into specs that Flux users expect to be compact.

use std::time::Duration;

/// `text` is not a duration such as `30s`, `5m` or `1h30m`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration such as 30s, 5m or 1h30m")]
pub struct DurationError {
    pub text: String,
}

/// Parses a sum of `<digits><unit>` parts with units `ms`, `s`, `m`, `h`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError {
        text: text.to_owned(),
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(invalid());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        total += match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_people_write() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse(" 1h30m "), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "5",
            "m",
            "5 m",
            "1d",
            "1.5h",
            "-1s",
            "1h-30m",
            "99999999999999999999s",
        ] {
            assert_eq!(
                parse(bad),
                Err(DurationError { text: bad.into() }),
                "{bad:?}"
            );
        }
    }
}
