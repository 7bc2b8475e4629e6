//! What Kettle writes out is cleaned here: the one redactor, which knows every secret value
//! Kettle holds (provider keys, exporter headers, Opik and Langfuse keys; each registered where
//! it is read) and replaces it wherever it appears, and the escaping of control characters in
//! text a node wrote before it reaches a terminal.
//!
//! The secrets are process-wide on purpose: a key read by the LLM client must be hidden by
//! the trace exporters, the log and the command line alike, whichever part prints it.

use std::borrow::Cow;
use std::sync::{PoisonError, RwLock};

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Shorter values are not redacted: they would hide innocent text, and no real key is that
/// short.
pub const MIN_SECRET_LEN: usize = 8;

/// Every secret registered so far, longest first (so that a secret containing another is
/// replaced whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds `value` to the secrets redacted from everything Kettle writes.
pub fn register(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_string());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every registered secret replaced by [`REDACTED`].
pub fn text(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

/// [`text`] for an owned string, which is returned unchanged (not copied) when it holds no
/// secret.
pub fn string(value: String) -> String {
    match text(&value) {
        Cow::Borrowed(_) => value,
        Cow::Owned(redacted) => redacted,
    }
}

/// `text` with its control characters (newlines, carriage returns, escape sequences, …)
/// written as escapes (`\n`, `\r`, `\u{1b}`), so that what a node wrote stays on one line and
/// cannot forge Kettle's own lines nor drive the terminal. Tabs are kept.
pub fn controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_escaped(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_escaped(c: char) -> bool {
    c.is_control() && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_are_replaced_everywhere() {
        register("sk-redact-test-0123456789");
        register("sk-redact-test-0123456789-longer");
        register("short");
        let echoed =
            "Invalid key: Bearer sk-redact-test-0123456789-longer, again sk-redact-test-0123456789";
        assert_eq!(
            text(echoed),
            "Invalid key: Bearer [REDACTED], again [REDACTED]"
        );
        assert_eq!(text("short stays"), "short stays");
        assert!(matches!(text("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            controls("a\nkettle: forged\r\u{1b}[2J\tb"),
            "a\\nkettle: forged\\r\\u{1b}[2J\tb"
        );
        assert!(matches!(controls("plain"), Cow::Borrowed(_)));
    }
}
