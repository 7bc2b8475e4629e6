//! `kettle run`: load the agent, run it, print the state and the summary, flush the trace.

use super::args::RunArgs;
use super::summary;
use super::{EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED, cache_dir};
use crate::engine::{ComponentEvent, EventSink, RunOptions, Runtime, load_agent};
use crate::sandbox::{CompileCache, Sandbox, SandboxConfig};
use crate::spec::{LimitsSpec, TracingSettings};
use crate::telemetry::{ExporterKind, Telemetry, TelemetryConfig};
use serde_json::{Map, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn run(args: RunArgs) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kettle: cannot start the async runtime: {e}");
            return EXIT_RUN_FAILED;
        }
    };
    runtime.block_on(run_async(args))
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
    let exporter = trace_exporter(
        args.no_trace,
        args.trace_dir.as_deref(),
        agent.tracing.as_ref(),
    );
    let telemetry = Arc::new(Telemetry::new(&TelemetryConfig {
        exporter,
        ..TelemetryConfig::default()
    }));
    let runtime = Runtime::new(sandbox, telemetry.clone());
    let options = RunOptions {
        max_steps: args.max_steps,
        limits,
        events: args
            .events
            .then(|| EventSink::new(|line| eprintln!("{line}"))),
    };
    let report = runtime.run(&agent, input, &options, interrupted()).await;

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
        eprint!("{}", summary::run_summary(&report));
    }
    if let Err(e) = tokio::task::spawn_blocking(move || telemetry.shutdown()).await {
        eprintln!("kettle: the trace exporter did not stop cleanly: {e}");
    }
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

/// The exporter: CLI flags beat `settings.tracing`, which beats the environment.
fn trace_exporter(
    no_trace: bool,
    dir: Option<&Path>,
    settings: Option<&TracingSettings>,
) -> ExporterKind {
    if no_trace {
        return ExporterKind::None;
    }
    if let Some(dir) = dir {
        return ExporterKind::File(dir.to_path_buf());
    }
    let exporter = settings.and_then(|s| s.exporter.as_deref());
    let sdk_disabled =
        std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    if exporter == Some("none") || (exporter.is_none() && sdk_disabled) {
        return ExporterKind::None;
    }
    let dir = settings
        .and_then(|s| s.dir.as_deref())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".kettle/traces"));
    ExporterKind::File(dir)
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
