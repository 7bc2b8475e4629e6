//! The one-screen summary printed on stderr.

use kettle::engine::{ComponentEvent, RunReport};
use kettle::sandbox::LoadOutcome;
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
            outcome: LoadOutcome::Cached { took },
        } => {
            format!(
                "loaded node `{node}` from the compile cache in {} ms",
                took.as_millis()
            )
        }
    }
}

/// `remote` names the exporters the trace is sent to besides the file (OTLP, console).
pub fn run_summary(report: &RunReport, remote: &[String]) -> String {
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
        llm.calls,
        plural(llm.calls),
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
        None if remote.is_empty() => {
            let _ = writeln!(out, "  trace   {} (not exported)", report.trace_id);
        }
        None => {
            let _ = writeln!(out, "  trace   {}", report.trace_id);
        }
    }
    for destination in remote {
        let _ = writeln!(out, "          sent to {destination}");
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
    if report.llm_is_mock {
        let _ = writeln!(
            out,
            "  LLM     the offline `mock` provider answered (no provider is configured); its answers echo the prompt."
        );
        let _ = writeln!(
            out,
            "          for a real model, add to the agent: settings: {{llm: {{provider: openai, model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}}}}"
        );
    } else {
        let _ = writeln!(out, "  LLM     provider `{}`", report.llm_provider);
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
