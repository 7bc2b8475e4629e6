//! Joining a resumed run to its trace: the resumed segment's root is a child of the original
//! run's root (same trace id), and the spans that were open when the process was killed (never
//! exported, since a span is written when it ends) are written now as stand-ins, so that
//! every span in the run's trace file has its parent.

use crate::telemetry::SpanRecord;
use opentelemetry::trace::{
    SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The original run's root, as the remote parent of the resumed segment's root.
pub(super) fn original_root(trace_id: &str, root_span_id: &str) -> Option<SpanContext> {
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(root_span_id).ok()?;
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

/// Writes a stand-in for the original root when the trace file lacks it, and one for every
/// other parent the file names but lacks (a node or group span open at the crash), as
/// children of the original root. Returns how many were written.
pub(super) fn stand_ins(
    tracer: &SdkTracer,
    trace_file: Option<&Path>,
    root: &SpanContext,
    agent: &str,
    run_id: &str,
    started_ms: u64,
) -> usize {
    // A line cut short by the kill is skipped.
    let text = trace_file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    let spans: Vec<SpanRecord> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let present: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let root_id = root.span_id().to_string();
    let mut missing: Vec<String> = spans
        .iter()
        .filter_map(|s| s.parent_span_id.clone())
        .filter(|p| !present.contains(p.as_str()) && *p != root_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    missing.sort();
    let start = UNIX_EPOCH + Duration::from_millis(started_ms);
    let now = SystemTime::now();
    let mut written = 0;
    let lost = |name: String, span_id: SpanId, parent: Option<&SpanContext>| {
        let cx = match parent {
            Some(p) => Context::new().with_remote_span_context(p.clone()),
            None => Context::new(),
        };
        let mut span = tracer
            .span_builder(name)
            .with_span_id(span_id)
            .with_trace_id(root.trace_id())
            .with_start_time(start)
            .with_attributes(vec![
                KeyValue::new("kettle.run.id", run_id.to_string()),
                KeyValue::new("kettle.span.lost", true),
            ])
            .start_with_context(tracer, &cx);
        opentelemetry::trace::Span::set_status(
            &mut span,
            Status::error(
                "the process was killed while this span was open; its details were lost; the run was resumed from its last checkpoint",
            ),
        );
        opentelemetry::trace::Span::end_with_timestamp(&mut span, now);
    };
    if !present.contains(root_id.as_str()) {
        lost(format!("invoke_agent {agent}"), root.span_id(), None);
        written += 1;
    }
    for id in missing {
        if let Ok(span_id) = SpanId::from_hex(&id) {
            lost("lost span".to_string(), span_id, Some(root));
            written += 1;
        }
    }
    written
}
