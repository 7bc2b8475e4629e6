//! W3C Trace Context: reading the caller's `traceparent` so a run can join its trace.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// Parses `00-{32 hex trace id}-{16 hex parent id}-{2 hex flags}` into a remote span context.
pub fn parse_traceparent(text: &str) -> Result<SpanContext, String> {
    let hint = "expected `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, such as 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [version, trace, span, flags] = parts[..] else {
        return Err(format!("`{text}` is not a traceparent: {hint}"));
    };
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return Err(format!("`{text}` is not a traceparent: {hint}"));
    }
    if version == "00" && parts.len() != 4 {
        return Err(format!("`{text}` is not a traceparent: {hint}"));
    }
    let trace_id = TraceId::from_hex(trace).map_err(|_| format!("`{trace}` is not a trace id"))?;
    let span_id = SpanId::from_hex(span).map_err(|_| format!("`{span}` is not a span id"))?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return Err(format!(
            "`{text}` has an all-zero trace or span id, which W3C Trace Context forbids"
        ));
    }
    let flags = u8::from_str_radix(flags, 16).map_err(|_| format!("`{flags}` is not hex"))?;
    Ok(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_valid_header() {
        let sc = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled());
        assert!(sc.is_remote());
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_err(), "{bad}");
        }
    }
}
