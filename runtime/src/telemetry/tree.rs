//! Renders a finished trace as an indented tree with durations and token counts.

use super::record::SpanRecord;
use super::semconv::{GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_OUTPUT_TOKENS};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// The tree of `spans`; spans whose parent is not in the trace are listed at the end.
pub fn render_tree(spans: &[SpanRecord]) -> String {
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<&str, Vec<&SpanRecord>> = HashMap::new();
    let mut roots = Vec::new();
    let mut orphans = Vec::new();
    for span in spans {
        match span.parent_span_id.as_deref() {
            Some(parent) if ids.contains(parent) => children.entry(parent).or_default().push(span),
            Some(_) => orphans.push(span),
            None => roots.push(span),
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time_unix_nano);
    }
    roots.sort_by_key(|s| s.start_time_unix_nano);

    let mut out = String::new();
    let trace_ids: HashSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    let mut trace_ids: Vec<&str> = trace_ids.into_iter().collect();
    trace_ids.sort_unstable();
    let _ = writeln!(
        out,
        "trace {} ({} spans)",
        trace_ids.join(", "),
        spans.len()
    );
    for root in &roots {
        render(&mut out, root, &children, "", "", "");
    }
    if !orphans.is_empty() {
        let _ = writeln!(out, "spans whose parent is not in this trace:");
        for span in orphans {
            render(&mut out, span, &children, "  ", "  ", "  ");
        }
    }
    out
}

fn render(
    out: &mut String,
    span: &SpanRecord,
    children: &HashMap<&str, Vec<&SpanRecord>>,
    prefix: &str,
    branch: &str,
    below: &str,
) {
    let _ = write!(
        out,
        "{prefix}{branch}{}  {:.1} ms",
        span.name,
        span.duration_ms()
    );
    if let (Some(i), Some(o)) = (
        span.attribute_i64(GEN_AI_USAGE_INPUT_TOKENS),
        span.attribute_i64(GEN_AI_USAGE_OUTPUT_TOKENS),
    ) {
        let _ = write!(out, "  tokens {i} in / {o} out");
    }
    if span
        .attributes
        .get("kettle.span.leaked")
        .and_then(|v| v.as_bool())
        == Some(true)
    {
        out.push_str("  [leaked]");
    }
    if span.status.code == "error" {
        let _ = write!(
            out,
            "  ERROR: {}",
            span.status.message.as_deref().unwrap_or("")
        );
    }
    out.push('\n');
    let kids = children
        .get(span.span_id.as_str())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let next_prefix = format!("{prefix}{below}");
    for (i, child) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let (branch, below) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        render(out, child, children, &next_prefix, branch, below);
    }
}
