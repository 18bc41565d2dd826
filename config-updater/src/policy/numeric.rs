//! Numbers for the `numerical` policy, compared exactly.
//!
//! Flux parses numerical keys as `float64`, which silently rounds: Unix-nanosecond timestamps
//! and long build serials above 2^53 compare equal, and a 20-digit serial overflows any integer
//! type. So we compare decimal strings exactly instead: sign, then integer digits (length first,
//! leading zeros ignored), then fraction digits (trailing zeros ignored). Accepted: `-?digits`
//! with an optional `.digits`. Exponents, `inf`, `NaN`, `+1`, `1.`, `.5` are not numbers here.

use std::cmp::Ordering;

/// A decimal number borrowed from its text, normalized for comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decimal<'a> {
    negative: bool,
    /// Integer digits without leading zeros (empty for zero).
    int: &'a str,
    /// Fraction digits without trailing zeros (empty for none).
    frac: &'a str,
}

impl<'a> Decimal<'a> {
    pub(super) fn parse(text: &'a str) -> Option<Self> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = match unsigned.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (unsigned, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int) || !frac.is_none_or(digits) {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.unwrap_or("").trim_end_matches('0');
        // `-0` and `-0.000` are zero, which has no sign.
        let negative = negative && !(int.is_empty() && frac.is_empty());
        Some(Decimal {
            negative,
            int,
            frac,
        })
    }

    /// The normalized text: `007` → `7`, `1.50` → `1.5`, `-0` → `0`.
    pub(super) fn normalized(&self) -> String {
        let mut s = String::with_capacity(self.int.len() + self.frac.len() + 3);
        if self.negative {
            s.push('-');
        }
        s.push_str(if self.int.is_empty() { "0" } else { self.int });
        if !self.frac.is_empty() {
            s.push('.');
            s.push_str(self.frac);
        }
        s
    }

    fn cmp_magnitude(&self, other: &Self) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(other.int))
            // Fractions without trailing zeros compare as digit strings: "5" (.5) > "25" (.25).
            .then_with(|| self.frac.cmp(other.frac))
    }
}

impl Ord for Decimal<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Decimal<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal<'_> {
        Decimal::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn parses_plain_decimals_only() {
        for ok in [
            "0",
            "7",
            "007",
            "1.5",
            "-3",
            "-0.25",
            "1700000000",
            "99999999999999999999999",
        ] {
            assert!(Decimal::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "-", "1.", ".5", "+1", "1e5", "inf", "NaN", "1.2.3", "12a", "0x10", " 1", "--1",
        ] {
            assert!(Decimal::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn compares_exactly_beyond_machine_integers() {
        assert!(d("99999999999999999999999") > d("18446744073709551615"));
        assert!(d("100000000000000000001") > d("100000000000000000000"));
        // Above 2^53, where float64 would call these equal.
        assert!(d("9007199254740993") > d("9007199254740992"));
        assert!(d("1700000000123456789") > d("1700000000123456788"));
    }

    #[test]
    fn leading_and_trailing_zeros_and_signs() {
        assert_eq!(d("007").cmp(&d("7")), Ordering::Equal);
        assert_eq!(d("1.50").cmp(&d("1.5")), Ordering::Equal);
        assert_eq!(d("-0").cmp(&d("0")), Ordering::Equal);
        assert!(d("10") > d("9"));
        assert!(d("1.5") > d("1.25"));
        assert!(d("0.5") > d("0"));
        assert!(d("-1") < d("0"));
        assert!(d("-2") < d("-1"));
        assert!(d("-1.5") < d("-1.25"));
        assert_eq!(d("-000.100").normalized(), "-0.1");
        assert_eq!(d("-0.0").normalized(), "0");
        assert_eq!(d("000").normalized(), "0");
    }
}
