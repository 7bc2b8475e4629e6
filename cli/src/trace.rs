//! `kettle trace show`: a past run's trace as a tree; `kettle trace push`: delivery of what a
//! collector outage left in the spool.

use super::args::{TracePushArgs, TraceShowArgs};
use super::{EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED};
use kettle::telemetry::{
    DEFAULT_SPOOL_DIR, process_env, push as push_spool, read_trace_file, render_tree,
};
use std::path::PathBuf;
use std::time::Duration;

/// How long one export request may take (as `kettle run`'s default).
const OTLP_TIMEOUT: Duration = Duration::from_secs(10);

pub fn push(args: TracePushArgs) -> u8 {
    let root = args
        .spool_dir
        .or_else(|| process_env("KETTLE_SPOOL_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SPOOL_DIR));
    let reports = push_spool(
        &root,
        &args.runs,
        &process_env,
        Duration::from_millis(args.timeout_ms),
        OTLP_TIMEOUT,
    );
    if reports.is_empty() {
        let which = if args.runs.is_empty() {
            String::new()
        } else {
            format!(" of {}", args.runs.join(", "))
        };
        eprintln!("kettle: no spans{which} wait in {}", root.display());
        return EXIT_OK;
    }
    let mut complete = true;
    for report in &reports {
        let left = report.waiting - report.delivered;
        if left == 0 {
            eprintln!(
                "kettle: delivered {} span{} to {}",
                report.delivered,
                if report.delivered == 1 { "" } else { "s" },
                report.destination
            );
        } else {
            complete = false;
            let why = report
                .last_error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            eprintln!(
                "kettle: {} of {} spans delivered to {}{why}; {left} still wait in {}",
                report.delivered,
                report.waiting,
                kettle::redact::text(&report.destination),
                report.spool.display()
            );
        }
    }
    if complete { EXIT_OK } else { EXIT_RUN_FAILED }
}

pub fn show(args: TraceShowArgs) -> u8 {
    let path = match resolve(&args) {
        Ok(path) => path,
        Err(message) => {
            eprintln!("kettle: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    match read_trace_file(&path) {
        Ok(spans) if spans.is_empty() => {
            eprintln!("kettle: {} holds no spans", path.display());
            EXIT_BAD_INPUT
        }
        Ok(spans) => {
            println!("{}", path.display());
            print!("{}", render_tree(&spans));
            EXIT_OK
        }
        Err(e) => {
            eprintln!("kettle: cannot read {}: {e}", path.display());
            EXIT_BAD_INPUT
        }
    }
}

/// A file path as given, a run id in `--dir`, or the newest file in `--dir`.
fn resolve(args: &TraceShowArgs) -> Result<PathBuf, String> {
    if let Some(run) = &args.run {
        let as_path = PathBuf::from(run);
        if as_path.is_file() {
            return Ok(as_path);
        }
        let in_dir = args.dir.join(format!("{run}.jsonl"));
        if in_dir.is_file() {
            return Ok(in_dir);
        }
        return Err(format!(
            "no trace `{run}`: neither a file nor a run in {} (pass --dir to look elsewhere)",
            args.dir.display()
        ));
    }
    let entries = std::fs::read_dir(&args.dir).map_err(|e| {
        format!(
            "no traces in {}: {e}; run an agent first (kettle run AGENT.yaml)",
            args.dir.display()
        )
    })?;
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
        .ok_or_else(|| {
            format!(
                "no trace files in {}; run an agent first",
                args.dir.display()
            )
        })
}
