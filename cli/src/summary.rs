//! The one-screen summary printed on stderr.

use kettle::engine::{ComponentEvent, RunReport};
use kettle::sandbox::LoadOutcome;
use kettle::telemetry::Delivery;
use std::fmt::Write;

pub fn component_event(event: &ComponentEvent) -> String {
    match event {
        ComponentEvent::Progress(line) => format!("{line}…"),
        ComponentEvent::Built {
            node,
            language,
            took,
        } => {
            format!(
                "built node `{node}` ({}) in {:.1} s",
                language.name(),
                took.as_secs_f64()
            )
        }
        ComponentEvent::Loaded {
            node,
            outcome: LoadOutcome::Compiled { took },
        } => {
            format!(
                "compiled node `{node}` in {:.2} s (cached for the next runs)",
                took.as_secs_f64()
            )
        }
        ComponentEvent::FromSource { node, language } => format!(
            "node `{node}` ({}) runs from source in the {} interpreter (no build; `kettle build --precompile` builds its component)",
            language.name(),
            language.name()
        ),
        ComponentEvent::Loaded {
            node,
            outcome: LoadOutcome::Precompiled { took },
        } => {
            format!(
                "loaded node `{node}` precompiled in {} ms",
                took.as_millis()
            )
        }
        ComponentEvent::Loaded {
            node,
            outcome: LoadOutcome::Cached { took },
        } => {
            format!(
                "loaded node `{node}` from the compile cache in {} ms",
                took.as_millis()
            )
        }
    }
}

/// `remote` names the local exporters besides the file (the console); `delivery` says what
/// the remote ones (OTLP, Opik, Langfuse) delivered of this run's spans by now.
pub fn run_summary(report: &RunReport, remote: &[String], delivery: &[Delivery]) -> String {
    let mut out = String::new();
    let verdict = if report.outcome.is_ok() {
        "finished"
    } else {
        "FAILED"
    };
    let llm = &report.llm;
    let _ = writeln!(
        out,
        "kettle: run of `{}` {verdict} in {:.2} s: {} node{} run, {} LLM call{}, {} tokens ({} in, {} out)",
        report.agent,
        report.duration.as_secs_f64(),
        report.nodes_run,
        plural(u64::from(report.nodes_run)),
        llm.sent(),
        plural(llm.sent()),
        llm.input_tokens + llm.output_tokens,
        llm.input_tokens,
        llm.output_tokens,
    );
    let _ = writeln!(out, "  run id  {}", report.run_id);
    match &report.trace_file {
        Some(file) => {
            let _ = writeln!(out, "  trace   {} → {}", report.trace_id, file.display());
            let _ = writeln!(
                out,
                "          see it with: kettle trace show {}",
                report.run_id
            );
        }
        None if remote.is_empty() && delivery.is_empty() => {
            let _ = writeln!(out, "  trace   {} (not exported)", report.trace_id);
        }
        None => {
            let _ = writeln!(out, "  trace   {}", report.trace_id);
        }
    }
    for destination in remote {
        let _ = writeln!(out, "          sent to {destination}");
    }
    for line in delivery_lines(&report.run_id, delivery) {
        let _ = writeln!(out, "          {line}");
    }
    if report.spans_refused > 0 {
        let _ = writeln!(
            out,
            "  spans   {} span{} refused past settings.budget.max_spans ({}): guest spans past it are not in the trace, and guests' LLM calls past it were denied",
            report.spans_refused,
            plural(report.spans_refused),
            report.max_spans
        );
    }
    let only_mock = llm.by_provider.iter().all(|p| p.system == "mock");
    if report.llm_is_mock && only_mock {
        let _ = writeln!(
            out,
            "  LLM     the offline `mock` provider answered (no provider is configured); its answers echo the prompt."
        );
        let _ = writeln!(
            out,
            "          for a real model, add to the agent: settings: {{llm: {{provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}}}}"
        );
    } else if llm.by_provider.is_empty() {
        let _ = writeln!(
            out,
            "  LLM     no call sent (default provider: {})",
            report.llm_provider
        );
    } else {
        let before = if llm.restored_calls > 0 {
            format!(
                "; {} call{} before the resume",
                llm.restored_calls,
                plural(llm.restored_calls)
            )
        } else {
            String::new()
        };
        let _ = writeln!(out, "  LLM     {}{before}", per_provider(&llm.by_provider));
    }
    out
}

/// `` `gpt` (openai) 2 calls, `claude` (anthropic) 1 call ``; the type is left out when the
/// provider is named after it.
fn per_provider(providers: &[kettle::capabilities::ProviderCalls]) -> String {
    providers
        .iter()
        .map(|p| {
            let kind = if p.name == p.system
                || (p.name == "azure_openai" && p.system == "azure.ai.openai")
            {
                String::new()
            } else {
                format!(" ({})", p.system)
            };
            format!("`{}`{kind} {} call{}", p.name, p.calls, plural(p.calls))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What each remote destination got of the run's spans; never more than it accepted.
pub fn delivery_lines(run_id: &str, delivery: &[Delivery]) -> Vec<String> {
    let mut lines = Vec::new();
    for d in delivery {
        let spans = &d.spans;
        let total = spans.ended.max(spans.spooled + spans.lost);
        let waiting = spans.waiting();
        let unspooled = spans.unspooled();
        if waiting == 0 && spans.lost == 0 && unspooled == 0 {
            lines.push(format!(
                "delivered {} span{} to {}",
                spans.delivered,
                plural(spans.delivered),
                d.destination
            ));
            continue;
        }
        let why = match d.last_error.as_deref() {
            Some(e) => format!(" ({e})"),
            None => " (not sent within the flush timeout)".to_string(),
        };
        if waiting > 0 {
            lines.push(format!(
                "{} of {total} spans delivered to {}{why}; {waiting} wait in {}: kettle trace push {run_id}",
                spans.delivered,
                d.destination,
                d.spool.display()
            ));
        } else {
            lines.push(format!(
                "{} of {total} spans delivered to {}",
                spans.delivered, d.destination
            ));
        }
        if spans.lost > 0 {
            lines.push(format!(
                "{} span{} could not be spooled for {}: {}",
                spans.lost,
                plural(spans.lost),
                d.destination,
                spans.lost_why.as_deref().unwrap_or("unknown")
            ));
        }
        if unspooled > 0 {
            lines.push(format!(
                "{unspooled} span{} for {} were still waiting to be written to the spool when the flush timeout ran out, and are lost (settings.tracing.flush_timeout_ms)",
                plural(unspooled),
                d.destination,
            ));
        }
    }
    lines
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kettle::telemetry::RunDelivery;

    fn delivery(spans: RunDelivery) -> Delivery {
        Delivery {
            destination: "otlp".into(),
            spans,
            spool: std::path::PathBuf::from("/spool/run-1"),
            last_error: None,
        }
    }

    #[test]
    fn every_span_delivered_is_one_line() {
        let spans = RunDelivery {
            ended: 8,
            spooled: 8,
            delivered: 8,
            ..RunDelivery::default()
        };
        assert_eq!(
            delivery_lines("run-1", &[delivery(spans)]),
            ["delivered 8 spans to otlp"]
        );
    }

    #[test]
    fn spans_never_written_to_the_spool_are_not_hidden() {
        let spans = RunDelivery {
            ended: 8,
            spooled: 6,
            delivered: 6,
            ..RunDelivery::default()
        };
        let lines = delivery_lines("run-1", &[delivery(spans)]);
        assert_eq!(lines[0], "6 of 8 spans delivered to otlp");
        assert!(
            lines[1].starts_with("2 spans for otlp were still waiting to be written to the spool"),
            "{lines:?}"
        );
    }
}
