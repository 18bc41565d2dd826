//! Parsing of the world's `env.sh`: the `export K=V` lines that `e2e/env up` publishes.
//!
//! Only what the world writes is understood: `export NAME=value`, where the value may be bare,
//! 'single quoted' (taken literally) or "double quoted", and bare or double-quoted values may
//! refer to `$NAME` / `${NAME}` (looked up among the lines before, then in the process
//! environment, so `PATH="$dir/bin:$PATH"` works). Other lines (comments, blank lines, shell code)
//! are skipped.

use std::collections::BTreeMap;

/// Parses the `export K=V` lines of an env.sh file, in order, expanding references to earlier
/// variables and to the process environment.
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("export ") else {
            continue;
        };
        let Some((name, raw)) = rest.trim_start().split_once('=') else {
            continue;
        };
        if name.is_empty() || !name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric()) {
            continue;
        }
        let value = unquote(raw.trim(), &vars);
        vars.insert(name.to_string(), value);
    }
    vars
}

fn unquote(raw: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // Literal up to the closing quote.
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                out.push(n);
                            }
                        }
                        '$' => expand(&mut chars, &mut out, vars),
                        c => out.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '$' => expand(&mut chars, &mut out, vars),
            // An unquoted space or `#` ends the value (the rest is a comment or another word).
            c if c.is_whitespace() => break,
            c => out.push(c),
        }
    }
    out
}

fn expand(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    out: &mut String,
    vars: &BTreeMap<String, String>,
) {
    let mut name = String::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        for c in chars.by_ref() {
            if c == '}' {
                break;
            }
            name.push(c);
        }
    } else {
        while let Some(&c) = chars.peek() {
            if c == '_' || c.is_ascii_alphanumeric() {
                name.push(c);
                chars.next();
            } else {
                break;
            }
        }
    }
    if name.is_empty() {
        out.push('$');
        return;
    }
    // `${NAME:-default}`: only the name part is looked up; the default applies when unset.
    let (name, default) = match name.split_once(":-") {
        Some((n, d)) => (n.to_string(), Some(d.to_string())),
        None => (name, None),
    };
    match vars
        .get(&name)
        .cloned()
        .or_else(|| std::env::var(&name).ok())
    {
        Some(v) if !v.is_empty() => out.push_str(&v),
        _ => out.push_str(default.as_deref().unwrap_or("")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_the_forms_the_world_writes() {
        let text = r#"
# written by e2e/env up
export KUBECONFIG=/tmp/sluice-world/kubeconfig
export SLUICE_CRASH_PATTERN='.*:([0-9]+\.)*13$'
export SLUICE_REGISTRY="127.0.0.1:15000"
export SLUICE_GIT_ROOT=/tmp/sluice-world/git
export SLUICE_GIT_SSH_URL="ssh://git@127.0.0.1:12222${SLUICE_GIT_ROOT}"
export PATH="/work/e2e/world/bin:$PATH"
not an export
"#;
        let vars = parse(text);
        assert_eq!(vars["KUBECONFIG"], "/tmp/sluice-world/kubeconfig");
        assert_eq!(vars["SLUICE_CRASH_PATTERN"], r".*:([0-9]+\.)*13$");
        assert_eq!(vars["SLUICE_REGISTRY"], "127.0.0.1:15000");
        assert_eq!(
            vars["SLUICE_GIT_SSH_URL"],
            "ssh://git@127.0.0.1:12222/tmp/sluice-world/git"
        );
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(vars["PATH"], format!("/work/e2e/world/bin:{path}"));
        assert_eq!(vars.len(), 6);
    }
}
