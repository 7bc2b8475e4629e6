//! `kettle run`: load the agent, run it, print the state and the summary, flush the trace.

use super::args::RunArgs;
use super::summary;
use super::{EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED, Threads, block_on, cache_dir};
use crate::engine::{Agent, ComponentEvent, EventSink, RunOptions, Runtime, load_agent};
use crate::sandbox::{CompileCache, Sandbox, SandboxConfig};
use crate::spec::LimitsSpec;
use crate::telemetry::{
    ExporterKind, Telemetry, TelemetryConfig, TraceOverrides, TraceSettings, parse_traceparent,
    process_env, resolve,
};
use futures::FutureExt;
use serde_json::{Map, Value};
use std::io::Read;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub fn run(args: RunArgs) -> u8 {
    block_on(Threads::Many, run_async(args))
}

async fn run_async(args: RunArgs) -> u8 {
    let limits = match parse_limits(&args.limits) {
        Ok(limits) => limits,
        Err(message) => {
            eprintln!("kettle: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    let input = match read_input(&args) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("kettle: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    let cache = cache_dir();
    let sandbox = match Sandbox::new(&SandboxConfig::default(), CompileCache::new(&cache)) {
        Ok(sandbox) => Arc::new(sandbox),
        Err(e) => {
            eprintln!("kettle: {e}");
            return EXIT_RUN_FAILED;
        }
    };
    let quiet = args.quiet;
    let events = move |event: ComponentEvent| {
        if !quiet {
            eprintln!("kettle: {}", summary::component_event(&event));
        }
    };
    let agent = match load_agent(&args.agent, &sandbox, &cache, &events).await {
        Ok(agent) => agent,
        Err(e) => {
            eprintln!("kettle: cannot load the agent:\n{e}");
            return EXIT_BAD_INPUT;
        }
    };
    let tape = match (&args.record, &args.replay) {
        (Some(path), _) => agent.llm.record_to(path),
        (None, Some(path)) => agent.llm.replay_from(path),
        (None, None) => Ok(()),
    };
    if let Err(e) = tape {
        eprintln!("kettle: {e}");
        return EXIT_BAD_INPUT;
    }
    let parent = match args.traceparent.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match parse_traceparent(text, args.tracestate.as_deref()) {
            Ok(parent) => Some(parent),
            Err(message) => {
                eprintln!("kettle: --traceparent (or TRACEPARENT): {message}");
                return EXIT_BAD_INPUT;
            }
        },
    };
    let telemetry = match telemetry_for(&args, &agent) {
        Ok(telemetry) => Arc::new(telemetry),
        Err(message) => {
            eprintln!("kettle: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    let runtime = Runtime::new(sandbox, telemetry.clone());
    let options = RunOptions {
        max_steps: args.max_steps,
        parent,
        limits,
        events: args
            .events
            .then(|| EventSink::new(|line| eprintln!("{line}"))),
    };
    // A panic inside the run still lets the trace be flushed below; the span guards it
    // unwinds through end their spans as cancelled.
    let report = match AssertUnwindSafe(runtime.run(&agent, input, &options, interrupted()))
        .catch_unwind()
        .await
    {
        Ok(report) => report,
        Err(_) => {
            eprintln!("kettle: internal error: the run panicked; flushing its trace");
            flush_telemetry(telemetry).await;
            return EXIT_RUN_FAILED;
        }
    };

    let state =
        serde_json::to_string_pretty(&Value::Object(report.state.clone())).unwrap_or_default();
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, format!("{state}\n")) {
                eprintln!(
                    "kettle: cannot write {}: {e}; the final state follows",
                    path.display()
                );
                println!("{state}");
            }
        }
        None => println!("{state}"),
    }
    if let Err(e) = &report.outcome {
        eprintln!("kettle: run failed: {e}");
    }
    if !quiet {
        eprint!(
            "{}",
            summary::run_summary(&report, &telemetry.remote_destinations())
        );
    }
    flush_telemetry(telemetry).await;
    if report.outcome.is_ok() {
        EXIT_OK
    } else {
        EXIT_RUN_FAILED
    }
}

fn read_input(args: &RunArgs) -> Result<Map<String, Value>, String> {
    let (text, origin) = match (&args.input, &args.input_file) {
        (Some(text), _) => (text.clone(), "--input".to_string()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read stdin: {e}"))?;
            (text, "stdin".to_string())
        }
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --input-file {}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        (None, None) => return Ok(Map::new()),
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!(
            "the input ({origin}) must be a JSON object, such as '{{\"topic\": \"tea\"}}'"
        )),
        Err(e) => Err(format!("the input ({origin}) is not JSON: {e}")),
    }
}

/// Resolves on Ctrl-C or SIGTERM, with the reason.
async fn interrupted() -> String {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C".to_string(),
                _ = term.recv() => "SIGTERM".to_string(),
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C".to_string()
}

/// The telemetry: CLI flags beat the agent's settings, which beat the environment.
fn telemetry_for(args: &RunArgs, agent: &Agent) -> Result<Telemetry, String> {
    let overrides = TraceOverrides {
        exporters: args.trace_exporter.clone(),
        endpoint: args.trace_endpoint.clone(),
        dir: args.trace_dir.clone(),
        no_trace: args.no_trace,
    };
    let settings = TraceSettings {
        tracing: agent.tracing.as_ref(),
        opik: agent.opik.as_ref(),
        langfuse: agent.langfuse.as_ref(),
    };
    let mut config = resolve(&overrides, settings, &process_env).map_err(|e| e.to_string())?;
    // `--trace-endpoint` alone adds OTLP to whatever exporters were chosen.
    if args.trace_endpoint.is_some() && args.trace_exporter.is_empty() {
        let with_otlp = TraceOverrides {
            exporters: exporter_names(&config, "otlp"),
            ..overrides
        };
        config = resolve(&with_otlp, settings, &process_env).map_err(|e| e.to_string())?;
    }
    Telemetry::new(&config).map_err(|e| e.to_string())
}

/// The names of `config`'s exporters, with `extra` added.
fn exporter_names(config: &TelemetryConfig, extra: &str) -> Vec<String> {
    let mut names: Vec<String> = config
        .exporters
        .iter()
        .map(|e| match e {
            ExporterKind::File(_) => "file".to_string(),
            ExporterKind::Console => "console".to_string(),
            ExporterKind::Otlp(target) => target.label.clone(),
        })
        .collect();
    if !names.iter().any(|n| n == extra) {
        names.push(extra.to_string());
    }
    names
}

/// Flushes and stops the exporters (bounded by the flush timeout) and prints what they
/// could not deliver.
async fn flush_telemetry(telemetry: Arc<Telemetry>) {
    match tokio::task::spawn_blocking(move || telemetry.shutdown()).await {
        Ok(warnings) => {
            for warning in warnings {
                eprintln!("kettle: warning: {warning}");
            }
        }
        Err(e) => eprintln!("kettle: the trace exporters did not stop cleanly: {e}"),
    }
}

/// `--limit KEY=VALUE` flags as one limits layer.
fn parse_limits(flags: &[String]) -> Result<LimitsSpec, String> {
    let mut limits = LimitsSpec::default();
    for flag in flags {
        let Some((key, value)) = flag.split_once('=') else {
            return Err(format!(
                "--limit {flag}: expected KEY=VALUE, such as --limit timeout_ms=5000"
            ));
        };
        let value: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("--limit {flag}: `{value}` is not a whole number"))?;
        let slot = match key.trim() {
            "memory_mb" => &mut limits.memory_mb,
            "timeout_ms" => &mut limits.timeout_ms,
            "fuel" => &mut limits.fuel,
            "max_llm_calls" => &mut limits.max_llm_calls,
            "max_llm_tokens" => &mut limits.max_llm_tokens,
            "max_output_bytes" => &mut limits.max_output_bytes,
            "max_log_lines" => &mut limits.max_log_lines,
            other => {
                return Err(format!(
                    "--limit {flag}: unknown limit `{other}`; known: memory_mb, timeout_ms, fuel, max_llm_calls, max_llm_tokens, max_output_bytes, max_log_lines"
                ));
            }
        };
        *slot = Some(value);
    }
    Ok(limits)
}
