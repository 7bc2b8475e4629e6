//! `GET /`: one small page embedded in the binary (no build step): the agents with their graphs
//! drawn, a form to start a run, its events live, the final state, and the run's span tree.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use kettle::telemetry::SpanRecord;
use serde_json::{Value, json};
use std::collections::HashMap;

const PAGE: &str = include_str!("page.html");

pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Everything the page needs is in it: no other origin, no inline code from data.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        PAGE,
    )
        .into_response()
}

/// Spans as nested `{name, duration_ms, status, tokens_in, tokens_out, children}`, children in
/// start order; a span whose parent is not in the file is a root.
pub fn span_tree(spans: &[SpanRecord]) -> Vec<Value> {
    let ids: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id.as_str(), i))
        .collect();
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        let parent = span
            .parent_span_id
            .as_deref()
            .and_then(|p| ids.get(p).copied());
        children.entry(parent).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|&i| spans[i].start_time_unix_nano);
    }
    fn build(
        i: usize,
        spans: &[SpanRecord],
        children: &HashMap<Option<usize>, Vec<usize>>,
    ) -> Value {
        let span = &spans[i];
        let tokens = |key: &str| span.attributes.get(key).and_then(Value::as_u64);
        json!({
            "name": span.name,
            "duration_ms": span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) as f64 / 1e6,
            "status": span.status.code,
            "tokens_in": tokens("gen_ai.usage.input_tokens"),
            "tokens_out": tokens("gen_ai.usage.output_tokens"),
            "children": children
                .get(&Some(i))
                .map(|c| c.iter().map(|&c| build(c, spans, children)).collect::<Vec<_>>())
                .unwrap_or_default(),
        })
    }
    children
        .get(&None)
        .map(|roots| roots.iter().map(|&r| build(r, spans, &children)).collect())
        .unwrap_or_default()
}
