//! Scalars at the byte level: where exactly a value's bytes are, and how a new value must be
//! written in the same style.
//!
//! The parser tells us roughly where a scalar starts (including any `&anchor`/`!tag` before it)
//! and what its value is; it does not reliably tell where the value's bytes end. We lex the token
//! ourselves from its start and only accept it when its bytes are provably the value: a
//! single-line plain scalar whose text equals the value, or a single-line quoted scalar.

use std::sync::LazyLock;

use regex::Regex;
use saphyr_parser::ScalarStyle;

use super::{ByteSpan, QuoteStyle, SkipReason};

/// A scalar whose bytes can be replaced in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    /// The value's bytes: inside the quotes for quoted scalars.
    pub content: ByteSpan,
    pub style: QuoteStyle,
}

/// Where a scalar's token ends, and its editable bytes if it has any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lexed {
    /// The byte just after the token (after the closing quote), where a trailing comment may
    /// start. For block scalars, the end of their content.
    pub end: usize,
    pub token: Result<Token, SkipReason>,
}

/// Find the token of a scalar event. `start`/`end` are the event's byte offsets (`end` is only
/// trusted for plain and block scalars), `value` and `style` what the parser read.
pub(crate) fn lex(text: &str, start: usize, end: usize, value: &str, style: ScalarStyle) -> Lexed {
    let p = skip_properties(text, start);
    let rest = &text[p..];
    match style {
        ScalarStyle::Literal | ScalarStyle::Folded => Lexed {
            end,
            token: Err(SkipReason::BlockScalar),
        },
        ScalarStyle::Plain if value.is_empty() => Lexed {
            end: p,
            token: Err(SkipReason::EmptyValue),
        },
        ScalarStyle::Plain if rest.starts_with(value) => Lexed {
            end: p + value.len(),
            token: Ok(Token {
                content: ByteSpan::new(p, p + value.len()),
                style: QuoteStyle::Plain,
            }),
        },
        // A plain scalar whose bytes differ from its value was folded over several lines.
        ScalarStyle::Plain => Lexed {
            end: end.max(p),
            token: Err(SkipReason::MultiLineScalar),
        },
        ScalarStyle::SingleQuoted => lex_quoted(rest, p, end, QuoteStyle::SingleQuoted),
        ScalarStyle::DoubleQuoted => lex_quoted(rest, p, end, QuoteStyle::DoubleQuoted),
    }
}

/// Skip `&anchor` and `!tag` properties (and the blanks, line breaks and comments after them).
fn skip_properties(text: &str, mut p: usize) -> usize {
    let bytes = text.as_bytes();
    while p < bytes.len() && (bytes[p] == b'&' || bytes[p] == b'!') {
        while p < bytes.len() && !bytes[p].is_ascii_whitespace() {
            p += 1;
        }
        loop {
            while p < bytes.len() && bytes[p].is_ascii_whitespace() {
                p += 1;
            }
            if p < bytes.len() && bytes[p] == b'#' {
                while p < bytes.len() && bytes[p] != b'\n' {
                    p += 1;
                }
            } else {
                break;
            }
        }
    }
    p
}

/// Lex a quoted scalar from its opening quote at `p`. A line break inside means the value was
/// folded, so its bytes are not the value: refuse, but still report where the token ends.
fn lex_quoted(rest: &str, p: usize, event_end: usize, style: QuoteStyle) -> Lexed {
    let quote = if style == QuoteStyle::SingleQuoted {
        b'\''
    } else {
        b'"'
    };
    let bytes = rest.as_bytes();
    let unlexable = Lexed {
        end: event_end.max(p),
        token: Err(SkipReason::MultiLineScalar),
    };
    if bytes.first() != Some(&quote) {
        return unlexable;
    }
    let mut multi_line = false;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' | b'\r' => {
                multi_line = true;
                i += 1;
            }
            b'\\' if quote == b'"' => {
                multi_line |= matches!(bytes.get(i + 1), Some(b'\n' | b'\r'));
                i += 2;
            }
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b if b == quote => {
                let token = if multi_line {
                    Err(SkipReason::MultiLineScalar)
                } else {
                    Ok(Token {
                        content: ByteSpan::new(p + 1, p + i),
                        style,
                    })
                };
                return Lexed {
                    end: p + i + 1,
                    token,
                };
            }
            _ => i += 1,
        }
    }
    unlexable
}

/// The comment directly after a token on the same line (only blanks between), as the text after
/// `#`, with its byte offset.
pub(crate) fn trailing_comment(line_rest: &str) -> Option<(usize, &str)> {
    let trimmed = line_rest.trim_start_matches([' ', '\t']);
    let blanks = line_rest.len() - trimmed.len();
    if blanks == 0 {
        return None;
    }
    trimmed.strip_prefix('#').map(|c| (blanks, c))
}

/// Whether the character may start a token in flow context or stops a plain scalar there.
const FLOW_INDICATORS: &[char] = &[',', '[', ']', '{', '}'];

/// Where the scalar is, for encoding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// Inside `{...}` or `[...]`, where `,[]{}` end a plain scalar.
    pub in_flow: bool,
    /// An explicit tag (`!!str`) fixes the type, whatever the value looks like.
    pub tagged: bool,
    /// The current value, whose type (as YAML reads a plain scalar) the new value must keep.
    pub old_value: &'a str,
}

/// The bytes to write for `value` in `style`, or why it cannot be written in that style.
pub(crate) fn encode(value: &str, style: QuoteStyle, ctx: Context<'_>) -> Result<String, String> {
    match style {
        QuoteStyle::Plain => encode_plain(value, ctx).map(|()| value.to_string()),
        QuoteStyle::SingleQuoted => {
            if let Some(c) = value.chars().find(|&c| is_unprintable(c)) {
                return Err(format!(
                    "it contains {c:?}, which a single-quoted value cannot express"
                ));
            }
            Ok(value.replace('\'', "''"))
        }
        QuoteStyle::DoubleQuoted => Ok(escape_double(value)),
    }
}

fn is_unprintable(c: char) -> bool {
    c.is_control() || c == '\u{feff}'
}

fn encode_plain(value: &str, ctx: Context<'_>) -> Result<(), String> {
    let Some(first) = value.chars().next() else {
        return Err("an empty plain value reads as null".to_string());
    };
    if let Some(c) = value.chars().find(|&c| is_unprintable(c)) {
        return Err(format!("it contains {c:?}"));
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err("it has leading or trailing blanks".to_string());
    }
    let second = value[first.len_utf8()..].chars().next();
    let leading_ok = match first {
        '-' | '?' => {
            second.is_some_and(|c| c != ' ' && !(ctx.in_flow && FLOW_INDICATORS.contains(&c)))
        }
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' | ':' => false,
        _ => true,
    };
    if !leading_ok || value.starts_with("---") || value.starts_with("...") {
        return Err(format!("it starts with {first:?}, a YAML indicator"));
    }
    if value.contains(": ") || value.ends_with(':') {
        return Err("it contains \": \" or ends with ':' (a mapping key)".to_string());
    }
    if value.contains(" #") {
        return Err("it contains \" #\" (a comment)".to_string());
    }
    if ctx.in_flow && value.contains(FLOW_INDICATORS) {
        return Err("it contains one of ,[]{} inside a flow collection".to_string());
    }
    if !ctx.tagged {
        let (old, new) = (PlainType::of(ctx.old_value), PlainType::of(value));
        if old != new {
            return Err(format!("it would be read as {new} instead of {old}"));
        }
    }
    Ok(())
}

fn escape_double(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_unprintable(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The type a plain scalar resolves to. Kubernetes and Helm read YAML 1.1 (`yes`, `0755`,
/// `1:30`, dates), this parser YAML 1.2; a value counts as non-string if either would resolve it
/// so. A tag bump `1.9` → `1.10` must not turn a string into the number 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PlainType {
    Null,
    Boolean,
    Integer,
    Float,
    Timestamp,
    String,
}

impl std::fmt::Display for PlainType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PlainType::Null => "null",
            PlainType::Boolean => "a boolean",
            PlainType::Integer => "an integer",
            PlainType::Float => "a floating-point number",
            PlainType::Timestamp => "a timestamp",
            PlainType::String => "a string",
        })
    }
}

static INTEGER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[-+]?(?:[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+|0b[01_]+|[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .expect("static regex")
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .expect("static regex")
});
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ].*)?$").expect("static regex")
});

impl PlainType {
    fn of(value: &str) -> PlainType {
        match value {
            "" | "~" | "null" | "Null" | "NULL" => PlainType::Null,
            "true" | "True" | "TRUE" | "false" | "False" | "FALSE" | "y" | "Y" | "yes" | "Yes"
            | "YES" | "n" | "N" | "no" | "No" | "NO" | "on" | "On" | "ON" | "off" | "Off"
            | "OFF" => PlainType::Boolean,
            v if INTEGER.is_match(v) => PlainType::Integer,
            v if FLOAT.is_match(v) => PlainType::Float,
            v if TIMESTAMP.is_match(v) => PlainType::Timestamp,
            _ => PlainType::String,
        }
    }
}

/// Whether a plain value reads as a string (and so may hold an image reference).
pub(crate) fn plain_is_string(value: &str) -> bool {
    PlainType::of(value) == PlainType::String
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_types_follow_yaml_1_1_and_1_2() {
        for (v, t) in [
            ("1.4.2", PlainType::String),
            ("v1.2", PlainType::String),
            ("1.10", PlainType::Float),
            ("1e3", PlainType::Float),
            ("42", PlainType::Integer),
            ("0755", PlainType::Integer),
            ("1:30", PlainType::Integer),
            ("yes", PlainType::Boolean),
            ("~", PlainType::Null),
            ("2024-01-15", PlainType::Timestamp),
            ("main-3f2a1b-1700000000", PlainType::String),
            ("sha256:abcd", PlainType::String),
        ] {
            assert_eq!(PlainType::of(v), t, "{v}");
        }
    }

    #[test]
    fn double_quoted_escapes() {
        assert_eq!(escape_double(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_double("a\u{7}"), "a\\u0007");
    }
}
