//! `kettle run`: load the agent, run it, print the state and the summary, flush the trace.

use super::args::RunArgs;
use super::summary;
use super::{
    EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, Threads, block_on, cache_dir,
};
use futures::FutureExt;
use kettle::checkpoint::{Checkpoint, CheckpointStore, open_store};
use kettle::engine::{
    Agent, AgentLoadError, ComponentEvent, Durability, EventSink, ReadAgent, RunError, RunOptions,
    Runtime, read_agent,
};
use kettle::sandbox::{CompileCache, PrecompiledSettings, Sandbox, SandboxConfig};
use kettle::spec::LimitsSpec;
use kettle::telemetry::{
    ExporterKind, Telemetry, TelemetryConfig, TraceOverrides, parse_traceparent, process_env,
    resolve,
};
use serde_json::{Map, Value};
use std::io::{Read, Write};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio_util::task::AbortOnDropHandle;

pub fn run(args: RunArgs) -> u8 {
    run_or_resume(args, None)
}

/// Where the run looks for precompiled components: `--precompiled`, `--precompiled-only`, and
/// always only those in a runtime-only kettle.
fn precompiled_settings(args: &super::args::PrecompiledArgs) -> PrecompiledSettings {
    let default = PrecompiledSettings::default();
    PrecompiledSettings {
        only: default.only || args.precompiled_only,
        dir: args.precompiled.clone(),
    }
}

/// A run to continue: its store and the checkpoint (with the resume's input merged in).
pub struct Resumed {
    pub store: Arc<dyn CheckpointStore>,
    pub checkpoint: Checkpoint,
    /// What `interrupt` returns to the node that asked: `--input`'s `answer`, else all of it.
    pub answer: Option<Value>,
}

/// `kettle run`, or `kettle resume` (which runs the run's agent file from a checkpoint).
pub fn run_or_resume(args: RunArgs, resumed: Option<Resumed>) -> u8 {
    // The agent is read before the async runtime starts: one without branches runs a node at
    // a time, and a runtime of one thread starts and stops faster than one per core. A file
    // that does not read is reported where loading is (after the flags and the input).
    let read = read_agent(&args.agent, &cache_dir());
    let threads = match &read {
        Ok(read) if !read.runs_branches() => Threads::One,
        _ => Threads::Many,
    };
    block_on(threads, async move {
        match run_async(args, resumed, read).await {
            Ok(code) => code,
            Err(stop) => {
                eprintln!("kettle: {}", kettle::redact::text(&stop.message));
                stop.code
            }
        }
    })
}

/// Why `kettle run` stopped before its run ended: what to say and the exit code.
struct Stop {
    message: String,
    code: u8,
}

impl Stop {
    pub(crate) fn bad_input(message: impl ToString) -> Self {
        Self {
            message: message.to_string(),
            code: EXIT_BAD_INPUT,
        }
    }
}

async fn run_async(
    args: RunArgs,
    resumed: Option<Resumed>,
    read: Result<ReadAgent, AgentLoadError>,
) -> Result<u8, Stop> {
    let limits = parse_limits(&args.limits).map_err(Stop::bad_input)?;
    let input = read_input(&args).map_err(Stop::bad_input)?;
    let cache = cache_dir();
    let sandbox = Arc::new(
        Sandbox::lazy(&SandboxConfig::default(), CompileCache::new(&cache))
            .with_precompiled(precompiled_settings(&args.precompiled)),
    );
    // One run per process: the sandbox lives until exit, and unmapping its instance pool
    // (a few milliseconds) is left to the kernel.
    std::mem::forget(Arc::clone(&sandbox));
    let quiet = args.quiet;
    let events = move |event: ComponentEvent| {
        if !quiet {
            eprintln!("kettle: {}", summary::component_event(&event));
        }
    };
    // A replayed run makes no request: the providers' key variables need not be set.
    let loaded = match read {
        Ok(read) if args.replay.is_some() && args.record.is_none() => {
            read.load_for_replay(&sandbox, &cache, &events).await
        }
        Ok(read) => read.load(&sandbox, &cache, &events).await,
        Err(e) => Err(e),
    };
    let agent = loaded.map_err(|e| Stop::bad_input(format!("cannot load the agent:\n{e}")))?;
    match (&args.record, &args.replay) {
        (Some(path), _) => agent.llm.record_to(path),
        (None, Some(path)) => agent.llm.replay_from(path),
        (None, None) => Ok(()),
    }
    .map_err(Stop::bad_input)?;
    agent
        .llm
        .grant_shell_providers(&args.allow_shell_providers)
        .map_err(Stop::bad_input)?;
    if !quiet {
        for warning in &agent.warnings {
            eprintln!("kettle: warning: {warning}");
        }
        for (name, command) in agent.llm.shell_providers() {
            if args.allow_shell_providers.contains(&name) {
                eprintln!("kettle: shell provider `{name}` granted: its calls run `{command}`");
            }
        }
    }
    let parent = match args.traceparent.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(parse_traceparent(text, args.tracestate.as_deref()).map_err(
            |message| Stop::bad_input(format!("--traceparent (or TRACEPARENT): {message}")),
        )?),
    };
    let telemetry = telemetry_for(&args, &agent)
        .map(Arc::new)
        .map_err(Stop::bad_input)?;
    let runtime = Runtime::new(sandbox, telemetry.clone());
    let store_flag = store_flag(&args, &agent, resumed.as_ref());
    let durable = durability(&args, &agent, resumed).map_err(Stop::bad_input)?;
    let options = RunOptions {
        durable,
        max_steps: args.max_steps,
        parent,
        limits,
        events: args
            .events
            .then(|| EventSink::new(|line| eprintln!("{line}"))),
        run_id: None,
    };
    // A panic inside the run still lets the trace be flushed below; the span guards it
    // unwinds through end their spans as cancelled.
    let Ok(report) = AssertUnwindSafe(runtime.run(&agent, input, &options, interrupted()))
        .catch_unwind()
        .await
    else {
        eprintln!("kettle: internal error: the run panicked; flushing its trace");
        flush_telemetry(telemetry).await;
        return Ok(EXIT_RUN_FAILED);
    };
    write_state(&report.state, args.output.as_deref());
    if let Err(e) = &report.outcome {
        eprintln!(
            "kettle: run failed: {}",
            kettle::redact::text(&e.to_string())
        );
    }
    if let Err(RunError::Paused {
        node,
        when,
        payload,
    }) = &report.outcome
    {
        if let Some(payload) = payload {
            eprintln!(
                "kettle: node `{node}` asks: {}",
                kettle::redact::controls(&kettle::redact::text(payload))
            );
        }
        if options.durable.is_none() {
            eprintln!(
                "kettle: the run was not durable; run it with --checkpoint to be able to resume it"
            );
        }
        eprintln!(
            "kettle: the run is waiting {when} node `{node}`; continue it with:\n  kettle resume {}{store_flag} --input '{{\"answer\": ...}}'",
            report.run_id
        );
    } else if report.outcome.is_err() && options.durable.is_some() {
        eprintln!(
            "kettle: the run is checkpointed; continue it from its last checkpoint with: kettle resume {}{store_flag}",
            report.run_id
        );
    }
    // A trace with spans missing fails the run, even when its nodes succeeded.
    if let Some(e) = &report.trace_error {
        eprintln!("kettle: {e}");
    }
    // Flushed first, so that the summary says what was delivered, not what was meant to be.
    flush_telemetry(telemetry.clone()).await;
    let delivery = telemetry.delivery(&report.run_id);
    if quiet {
        for d in delivery
            .iter()
            .filter(|d| d.spans.waiting() + d.spans.lost + d.spans.unspooled() > 0)
        {
            for line in summary::delivery_lines(&report.run_id, std::slice::from_ref(d)) {
                eprintln!("kettle: warning: {}", kettle::redact::text(&line));
            }
        }
    } else {
        eprint!(
            "{}",
            kettle::redact::text(&summary::run_summary(
                &report,
                &telemetry.remote_destinations(),
                &delivery
            ))
        );
    }
    let code = match (&report.outcome, &report.trace_error) {
        (Ok(()), None) => EXIT_OK,
        (Err(RunError::Paused { .. }), None) => EXIT_INTERRUPTED,
        _ => EXIT_RUN_FAILED,
    };
    // The process exits next: freeing the agent and the final state (a large agent is tens
    // of thousands of allocations) is left to the kernel, as is the sandbox above.
    std::mem::forget(agent);
    std::mem::forget(report);
    Ok(code)
}

/// The `--store` a resume of this run needs (none for the default store): the URL of
/// `--store` or `settings.checkpoint.url`, never repeated when it holds a password.
fn store_flag(args: &RunArgs, agent: &Agent, resumed: Option<&Resumed>) -> String {
    // A resume reads the store its `--store` names, whatever the agent's settings say.
    let from_settings = || {
        agent
            .checkpoint
            .as_ref()
            .and_then(|settings| settings.url.clone())
    };
    let url = match resumed {
        Some(_) => args.store.clone(),
        None => args.store.clone().or_else(from_settings),
    };
    match url {
        None => String::new(),
        Some(url) if url.contains('@') => {
            " --store URL (the store's URL, as given to --store or in settings.checkpoint.url)"
                .into()
        }
        Some(url) => format!(" --store '{url}'"),
    }
}

/// Whether the run is durable, and where its checkpoints go: `--checkpoint`/`--store`,
/// `settings.checkpoint`, or interrupts in the agent (which need a checkpoint to resume from).
fn durability(
    args: &RunArgs,
    agent: &Agent,
    resumed: Option<Resumed>,
) -> Result<Option<Durability>, String> {
    let agent_file = std::fs::canonicalize(&args.agent)
        .unwrap_or_else(|_| args.agent.clone())
        .display()
        .to_string();
    if let Some(resumed) = resumed {
        return Ok(Some(Durability {
            store: resumed.store,
            agent_file,
            resume: Some(resumed.checkpoint),
            answer: resumed.answer,
        }));
    }
    let wanted = args.checkpoint
        || args.store.is_some()
        || agent.checkpoint.is_some()
        || !agent.interrupts.is_empty();
    if !wanted {
        return Ok(None);
    }
    let settings = agent.checkpoint.clone().unwrap_or_default();
    let kind = settings.store.as_deref().unwrap_or("sqlite");
    let url = args.store.as_deref().or(settings.url.as_deref());
    let store = open_store(kind, url).map_err(|e| format!("settings.checkpoint: {e}"))?;
    Ok(Some(Durability {
        store,
        agent_file,
        resume: None,
        answer: None,
    }))
}

/// The final state as JSON: to `output` when given (to stdout if it cannot be written), else
/// to stdout.
fn write_state(state: &Map<String, Value>, output: Option<&std::path::Path>) {
    let state = serde_json::to_string_pretty(state).unwrap_or_default();
    if let Some(path) = output {
        match std::fs::write(path, format!("{state}\n")) {
            Ok(()) => return,
            Err(e) => eprintln!(
                "kettle: cannot write {}: {e}; the final state follows",
                path.display()
            ),
        }
    }
    // A reader that stops early (`kettle run … | head`) is not an error of the run.
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = writeln!(stdout, "{state}").and_then(|()| stdout.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("kettle: cannot write the final state to stdout: {e}");
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

/// Resolves on Ctrl-C or SIGTERM, with the reason. The signals are awaited on a task of their
/// own: the run polls this future every time it wakes (once or more per node), and a channel
/// is cheaper to ask than the signal streams.
async fn interrupted() -> String {
    let (reason, signalled) = tokio::sync::oneshot::channel();
    // Aborted when the run no longer waits for it.
    let _listener = AbortOnDropHandle::new(tokio::spawn(async move {
        let _ = reason.send(super::signals::ctrl_c_or_sigterm().await.to_string());
    }));
    match signalled.await {
        Ok(reason) => reason,
        // The listener is gone only with the runtime.
        Err(_) => std::future::pending().await,
    }
}

/// The telemetry: CLI flags beat the agent's settings, which beat the environment.
fn telemetry_for(args: &RunArgs, agent: &Agent) -> Result<Telemetry, String> {
    let overrides = TraceOverrides {
        exporters: args.trace_exporter.clone(),
        endpoint: args.trace_endpoint.clone(),
        dir: args.trace_dir.clone(),
        no_trace: args.no_trace,
    };
    let settings = agent.trace_settings();
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
                eprintln!("kettle: warning: {}", kettle::redact::text(&warning));
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
            "max_log_bytes" => &mut limits.max_log_bytes,
            "max_error_bytes" => &mut limits.max_error_bytes,
            other => {
                return Err(format!(
                    "--limit {flag}: unknown limit `{other}`; known: memory_mb, timeout_ms, fuel, max_llm_calls, max_llm_tokens, max_output_bytes, max_log_lines, max_log_bytes, max_error_bytes"
                ));
            }
        };
        *slot = Some(value);
    }
    Ok(limits)
}
