//! W3C Trace Context through OpenTelemetry's `TraceContextPropagator`: reading the caller's
//! `traceparent` and `tracestate` so a run can join its trace, and writing both for a span so
//! that an LLM provider can join the run's trace.

use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use std::collections::HashMap;
use std::str::FromStr;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// A `traceparent` that cannot name the caller's span.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{text}` is not a traceparent: {problem}; expected `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>` in lowercase, such as 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)]
pub struct TraceparentError {
    text: String,
    problem: String,
}

/// The caller's span, from its `traceparent` and (optional) `tracestate` headers. A
/// `tracestate` that is not valid is dropped, as W3C Trace Context prescribes.
pub fn parse_traceparent(
    traceparent: &str,
    tracestate: Option<&str>,
) -> Result<SpanContext, TraceparentError> {
    let text = traceparent.trim();
    let refused = |problem: String| TraceparentError {
        text: text.to_string(),
        problem,
    };
    // The propagator says only whether it accepted the header, and it lets shortened ids
    // through; `problem` checks the header's form first and says what is wrong.
    if let Some(problem) = problem(text) {
        return Err(refused(problem));
    }
    let mut carrier = HashMap::from([(TRACEPARENT.to_string(), sampled_bit_only(text))]);
    if let Some(state) = tracestate.map(str::trim).filter(|s| !s.is_empty()) {
        if TraceState::from_str(state).is_err() {
            tracing::warn!(
                tracestate = state,
                "ignoring a tracestate that is not valid"
            );
        }
        carrier.insert(TRACESTATE.to_string(), state.to_string());
    }
    let cx = TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier);
    let parent = cx.span().span_context().clone();
    if parent.is_valid() {
        Ok(parent)
    } else {
        Err(refused("OpenTelemetry's W3C parser refused it".into()))
    }
}

/// `text` (of a valid form) with its flags reduced to the sampled bit, the only one a span
/// context keeps. OpenTelemetry 0.31 refuses version-00 flags above 02, though W3C Trace
/// Context says flags it does not know are to be ignored (and Level 2 defines 02, random).
fn sampled_bit_only(text: &str) -> String {
    let mut fields: Vec<String> = text.split('-').map(str::to_string).collect();
    if let Some(flags) = fields.get_mut(3) {
        let sampled = u8::from_str_radix(flags, 16).unwrap_or(0) & 1;
        *flags = format!("{sampled:02x}");
    }
    fields.join("-")
}

/// What is wrong with the form of a `traceparent`, if anything.
fn problem(text: &str) -> Option<String> {
    let fields: Vec<&str> = text.split('-').collect();
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let [version, trace, span, flags, ref rest @ ..] = fields[..] else {
        return Some(format!(
            "it has {} dash-separated fields, not 4",
            fields.len()
        ));
    };
    if !lower_hex(version, 2) {
        return Some(format!(
            "the version `{version}` is not 2 lowercase hex digits"
        ));
    }
    if version == "ff" {
        return Some("version ff is forbidden".into());
    }
    if version == "00" && !rest.is_empty() {
        return Some("version 00 has exactly 4 fields".into());
    }
    if !lower_hex(trace, 32) {
        return Some(format!(
            "the trace id `{trace}` is not 32 lowercase hex digits"
        ));
    }
    if trace.bytes().all(|b| b == b'0') {
        return Some("the trace id is all zeros, which W3C Trace Context forbids".into());
    }
    if !lower_hex(span, 16) {
        return Some(format!(
            "the parent span id `{span}` is not 16 lowercase hex digits"
        ));
    }
    if span.bytes().all(|b| b == b'0') {
        return Some("the parent span id is all zeros, which W3C Trace Context forbids".into());
    }
    if !lower_hex(flags, 2) {
        return Some(format!(
            "the flags `{flags}` are not 2 lowercase hex digits"
        ));
    }
    None
}

/// The headers naming the span of `cx` to another service: `traceparent`, and `tracestate`
/// when the trace carries one.
pub fn trace_headers(cx: &Context) -> Vec<(String, String)> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    // The propagator writes `tracestate` even when it is empty; an empty header says nothing.
    let mut headers: Vec<(String, String)> = carrier
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    headers.sort();
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId};

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_a_valid_header() {
        let sc = parse_traceparent(VALID, None).expect("valid");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled());
        assert!(sc.is_remote());
        assert_eq!(sc.trace_state().header(), "");
    }

    #[test]
    fn keeps_the_sampled_bit_of_any_flags() {
        for (flags, sampled) in [("00", false), ("01", true), ("02", false), ("03", true)] {
            let text = format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}");
            let sc = parse_traceparent(&text, None).expect("valid");
            assert_eq!(sc.is_sampled(), sampled, "{flags}");
        }
    }

    #[test]
    fn carries_the_tracestate() {
        let sc = parse_traceparent(VALID, Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"))
            .expect("valid");
        assert_eq!(sc.trace_state().get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(sc.trace_state().get("rojo"), Some("00f067aa0ba902b7"));
        let dropped = parse_traceparent(VALID, Some("not a = tracestate")).expect("valid");
        assert_eq!(dropped.trace_state().header(), "");
    }

    #[test]
    fn refuses_malformed_headers_saying_why() {
        for (bad, why) in [
            ("", "1 dash-separated fields"),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "3 dash-separated fields",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "not 32 lowercase hex digits",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "trace id is all zeros",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "span id is all zeros",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version ff",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                "not 32 lowercase hex digits",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                "exactly 4 fields",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-x1",
                "flags `x1`",
            ),
        ] {
            let message = parse_traceparent(bad, None).expect_err(bad).to_string();
            assert!(message.contains("is not a traceparent"), "{message}");
            assert!(message.contains(why), "{bad}: {message}");
            assert!(
                message.contains("expected `00-<32 hex trace id>"),
                "{message}"
            );
        }
    }

    #[test]
    fn writes_traceparent_and_a_tracestate_only_when_there_is_one() {
        let context = |state: TraceState| {
            Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
                SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
                TraceFlags::SAMPLED,
                true,
                state,
            ))
        };
        assert_eq!(
            trace_headers(&context(TraceState::default())),
            [(TRACEPARENT.to_string(), VALID.to_string())]
        );
        let state = TraceState::from_key_value([("rojo", "00f067aa0ba902b7")]).expect("state");
        assert_eq!(
            trace_headers(&context(state)),
            [
                (TRACEPARENT.to_string(), VALID.to_string()),
                (TRACESTATE.to_string(), "rojo=00f067aa0ba902b7".to_string()),
            ]
        );
        assert!(trace_headers(&Context::new()).is_empty());
    }
}
