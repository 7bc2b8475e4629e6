//! Per-node budgets on what a guest may write into the trace: spans beyond the cap are not
//! created, attribute and event bytes beyond the cap are not recorded, and both are counted
//! and reported once, so a runaway guest costs bounded memory.

use super::config::{MAX_ATTRIBUTE_VALUE_BYTES, SpanCaps};

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
        Some((end, _)) => format!(
            "{}…[{} more characters]",
            &text[..end],
            text[end..].chars().count()
        ),
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
    fn truncation_keeps_characters_whole() {
        assert_eq!(truncate_bytes("héllo".into(), 2), "h…[5 more bytes]");
        assert_eq!(truncate_chars("héllo", 2), "hé…[3 more characters]");
        assert_eq!(truncate_chars("hé", 2), "hé");
    }
}
