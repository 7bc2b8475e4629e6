//! Budgets on what guests may write into the trace: per node, spans beyond the cap are not
//! created, attribute and event bytes beyond the cap are not recorded; per run, guest-made
//! spans stop at the run's span budget; per span, a guest sets a bounded number of attributes
//! and none of the host's. All of it is counted and reported, so a runaway guest costs bounded
//! memory and cannot hide or forge what the host records.

use super::config::{MAX_ATTRIBUTE_VALUE_BYTES, MAX_GUEST_ATTRIBUTES_PER_SPAN, SpanCaps};
use super::semconv;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The budget of one node execution.
#[derive(Debug, Clone)]
pub struct NodeBudget {
    caps: SpanCaps,
    spans: u64,
    bytes: u64,
    pub dropped_spans: u64,
    pub dropped_attributes: u64,
    warned: bool,
}

impl NodeBudget {
    pub fn new(caps: SpanCaps) -> Self {
        Self {
            caps,
            spans: 0,
            bytes: 0,
            dropped_spans: 0,
            dropped_attributes: 0,
            warned: false,
        }
    }

    /// Whether one more span may be created; counts it either way.
    pub fn take_span(&mut self) -> bool {
        if self.spans < self.caps.max_spans {
            self.spans += 1;
            true
        } else {
            self.dropped_spans += 1;
            false
        }
    }

    /// Whether `bytes` more of attributes or events fit; counts a refusal.
    pub fn take_bytes(&mut self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        if self.bytes.saturating_add(bytes) <= self.caps.max_attribute_bytes {
            self.bytes += bytes;
            true
        } else {
            self.dropped_attributes += 1;
            false
        }
    }

    /// True the first time a cap was hit, so the caller logs it once.
    pub fn first_overflow(&mut self) -> bool {
        let over = self.dropped_spans > 0 || self.dropped_attributes > 0;
        if over && !self.warned {
            self.warned = true;
            return true;
        }
        false
    }

    pub fn caps(&self) -> SpanCaps {
        self.caps
    }
}

/// The run's budget of guest-made spans (`settings.budget.max_spans`): the guests' `trace`
/// spans and the `chat` spans of their LLM calls, across every node of the run. The host's
/// own spans (root, node, item, parallel, iteration) never take from it.
#[derive(Debug)]
pub struct RunSpanBudget {
    max: u64,
    taken: AtomicU64,
    refused: AtomicU64,
    warned: AtomicBool,
}

impl RunSpanBudget {
    pub fn new(max: u64) -> Self {
        Self {
            max,
            taken: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    /// Whether one more guest span may be recorded; counts a refusal, and warns once per run.
    pub fn take(&self, run_id: &str) -> bool {
        let admitted = self
            .taken
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    run = run_id,
                    max_spans = self.max,
                    "the run used up its span budget; further guest spans are counted, not recorded, and guests' LLM calls are denied (settings.budget.max_spans)"
                );
            }
        }
        admitted
    }

    /// Guest spans refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max
    }
}

/// Whose span a guest writes an attribute on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanOwner {
    /// The node's own span, opened by the host.
    Host,
    /// A span the guest opened with `start-span`.
    Guest,
}

/// Whether `key` is the host's to set on a span of `owner`: `kettle.*` on every span (it
/// routes the span to its run and says where it came from), and on the host's spans the
/// GenAI and OpenInference names and `error.type`, which the host sets and backends read.
pub fn host_owned(key: &str, owner: SpanOwner) -> bool {
    key.starts_with("kettle.")
        || owner == SpanOwner::Host
            && (key.starts_with("gen_ai.")
                || [
                    semconv::ERROR_TYPE,
                    semconv::INPUT_VALUE,
                    semconv::INPUT_MIME_TYPE,
                    semconv::OUTPUT_VALUE,
                    semconv::OUTPUT_MIME_TYPE,
                ]
                .contains(&key))
}

/// The guest attributes of one span: at most [`MAX_GUEST_ATTRIBUTES_PER_SPAN`] of them, none
/// the host's; what is refused is counted. Atomics only so that it can be shared.
#[derive(Debug)]
pub struct SpanTally {
    owner: SpanOwner,
    kept: AtomicU32,
    refused: AtomicU64,
}

impl SpanTally {
    pub fn new(owner: SpanOwner) -> Self {
        Self {
            owner,
            kept: AtomicU32::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Whether the guest may set `key` on this span; counts a refusal.
    pub fn admit(&self, key: &str) -> bool {
        let admitted = !host_owned(key, self.owner)
            && self
                .kept
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < MAX_GUEST_ATTRIBUTES_PER_SPAN).then_some(n + 1)
                })
                .is_ok();
        if !admitted {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// Attributes refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, saying how much was cut.
pub fn truncate_bytes(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} more bytes]", &text[..end], text.len() - end)
}

/// Cuts `text` to at most `max` characters, saying how many were cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => with_cut_chars(&text[..end], text[end..].chars().count()),
    }
}

/// What was kept of a text, and how many characters were cut after it.
fn with_cut_chars(kept: &str, cut: usize) -> String {
    format!("{kept}…[{cut} more characters]")
}

/// `value` as JSON text cut to at most `max` characters, as [`truncate_chars`] would cut its
/// whole text, without holding that whole text: a 100 KB state on a span costs its
/// serialization, not a copy of the state, its text and a second pass over it.
pub fn json_chars(value: &impl serde::Serialize, max: usize) -> String {
    let mut text = CappedText::new(max);
    if serde_json::to_writer(&mut text, value).is_err() {
        // Maps with non-string keys cannot be JSON; no state or update is one.
        return String::new();
    }
    text.finish()
}

/// A writer keeping the first `max` characters of what it is given and counting the rest.
struct CappedText {
    kept: Vec<u8>,
    max: usize,
    chars: usize,
    more: usize,
}

impl CappedText {
    fn new(max: usize) -> Self {
        Self {
            kept: Vec::new(),
            max,
            chars: 0,
            more: 0,
        }
    }

    fn finish(self) -> String {
        // serde_json writes whole characters, so what is kept is UTF-8; lossy only in theory.
        let kept = String::from_utf8(self.kept)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if self.more == 0 {
            kept
        } else {
            with_cut_chars(&kept, self.more)
        }
    }
}

/// Whether `byte` starts a UTF-8 character (is not a continuation byte).
fn starts_char(byte: u8) -> bool {
    (byte as i8) >= -0x40
}

impl std::io::Write for CappedText {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut rest = bytes;
        if self.more == 0 {
            let mut end = 0;
            for &byte in rest {
                if starts_char(byte) {
                    if self.chars == self.max {
                        break;
                    }
                    self.chars += 1;
                }
                end += 1;
            }
            self.kept.extend_from_slice(&rest[..end]);
            rest = &rest[end..];
        }
        self.more += rest.iter().filter(|b| starts_char(**b)).count();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A guest attribute value cut to the per-value limit.
pub fn cap_value(text: String) -> String {
    truncate_bytes(text, MAX_ATTRIBUTE_VALUE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_chars_cuts_as_truncate_chars_cuts_the_whole_text() {
        let value = serde_json::json!({"a": "é".repeat(40), "b": [1, 2, "x\"y"], "c": "日本語"});
        let whole = value.to_string();
        for max in [0, 1, 5, 6, 7, 20, 44, 45, 60, whole.chars().count(), 10_000] {
            assert_eq!(
                json_chars(&value, max),
                truncate_chars(&whole, max),
                "max {max}"
            );
        }
    }

    #[test]
    fn spans_and_bytes_stop_at_the_caps_and_overflow_is_reported_once() {
        let mut budget = NodeBudget::new(SpanCaps {
            max_spans: 2,
            max_attribute_bytes: 10,
        });
        assert!(budget.take_span() && budget.take_span());
        assert!(!budget.take_span());
        assert!(budget.take_bytes(10));
        assert!(!budget.take_bytes(1));
        assert_eq!((budget.dropped_spans, budget.dropped_attributes), (1, 1));
        assert!(budget.first_overflow());
        assert!(!budget.first_overflow());
    }

    #[test]
    fn the_run_budget_admits_up_to_its_maximum_then_counts_refusals() {
        let budget = RunSpanBudget::new(2);
        assert!(budget.take("r") && budget.take("r"));
        assert!(!budget.take("r") && !budget.take("r"));
        assert_eq!((budget.refused(), budget.max()), (2, 2));
    }

    #[test]
    fn guests_set_none_of_the_hosts_keys_and_a_bounded_number_of_their_own() {
        let node = SpanTally::new(SpanOwner::Host);
        for key in [
            "kettle.node.name",
            "kettle.run.id",
            "error.type",
            "gen_ai.agent.name",
            "input.value",
        ] {
            assert!(!node.admit(key), "{key} is the host's on its span");
        }
        let own = SpanTally::new(SpanOwner::Guest);
        assert!(!own.admit("kettle.span.origin"));
        assert!(
            own.admit("error.type") && own.admit("gen_ai.tool.name"),
            "a guest span's semantics are the guest's"
        );
        for i in 0..MAX_GUEST_ATTRIBUTES_PER_SPAN {
            assert!(node.admit(&format!("k{i}")));
        }
        assert!(!node.admit("one.more"));
        assert_eq!(node.refused(), 6);
        assert_eq!(own.refused(), 1);
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_bytes("héllo".into(), 2), "h…[5 more bytes]");
        assert_eq!(truncate_chars("héllo", 2), "hé…[3 more characters]");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }
}
