//! Every ended span passes through here before any exporter sees it: the secrets the
//! process-wide redactor knows are replaced in its name, attributes, events and status, so no
//! trace (file, console, OTLP) can carry a key, whoever put it in the span.

use crate::redact;
use opentelemetry::trace::Status;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use std::borrow::Cow;

/// `span` with every registered secret redacted.
pub fn span(mut span: SpanData) -> SpanData {
    span.name = cow(span.name);
    redact_attributes(&mut span.attributes);
    for event in &mut span.events.events {
        event.name = cow(std::mem::take(&mut event.name));
        redact_attributes(&mut event.attributes);
    }
    if let Status::Error { description } = &mut span.status {
        *description = cow(std::mem::take(description));
    }
    span
}

fn cow(text: Cow<'static, str>) -> Cow<'static, str> {
    match redact::text(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(redacted) => Cow::Owned(redacted),
    }
}

fn redact_attributes(attributes: &mut [KeyValue]) {
    for attribute in attributes {
        match &mut attribute.value {
            Value::String(value) => {
                if let Some(redacted) = string_value(value) {
                    *value = redacted;
                }
            }
            Value::Array(Array::String(values)) => {
                for value in values {
                    if let Some(redacted) = string_value(value) {
                        *value = redacted;
                    }
                }
            }
            _ => {}
        }
    }
}

/// The redacted value, when it held a secret.
fn string_value(value: &StringValue) -> Option<StringValue> {
    match redact::text(value.as_str()) {
        Cow::Borrowed(_) => None,
        Cow::Owned(redacted) => Some(redacted.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    #[test]
    fn secrets_leave_every_part_of_a_span() {
        let secret = "sk-span-redaction-test-42";
        redact::register(secret);
        let said = format!("Invalid key: Bearer {secret}");
        let mut events = SpanEvents::default();
        events.events.push(opentelemetry::trace::Event::new(
            "kettle.llm.error",
            SystemTime::now(),
            vec![KeyValue::new("message", said.clone())],
            0,
        ));
        let data = SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: "chat gpt".into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: vec![
                KeyValue::new("error.message", said.clone()),
                KeyValue::new(
                    "list",
                    Value::Array(Array::String(vec![said.clone().into()])),
                ),
                KeyValue::new("n", 1),
            ],
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: Status::error(said),
            instrumentation_scope: Default::default(),
        };
        let out = span(data);
        let text = format!(
            "{:?} {:?} {:?}",
            out.attributes, out.events.events, out.status
        );
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains("Bearer [REDACTED]"), "{text}");
    }
}
