//! `kettle resume`, `kettle runs list` and `kettle runs show`: durable runs read from the
//! checkpoint store (`--store`, default `.kettle/state.db`).

use super::args::{ResumeArgs, RunArgs, RunsListArgs, RunsShowArgs};
use super::run::{Resumed, run_or_resume};
use super::{EXIT_BAD_INPUT, EXIT_OK};
use kettle::checkpoint::{CheckpointStore, PathPos, RunStatus, open_store};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

fn store(url: Option<&str>) -> Result<Arc<dyn CheckpointStore>, String> {
    open_store("sqlite", url).map_err(|e| e.to_string())
}

fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("kettle: {}", kettle::redact::text(&message.to_string()));
    EXIT_BAD_INPUT
}

pub fn resume(args: ResumeArgs) -> u8 {
    match prepare(&args) {
        Ok((run_args, resumed)) => run_or_resume(run_args, Some(resumed)),
        Err(message) => fail(message),
    }
}

/// The run's agent file and the checkpoint to continue from, the `--input` merged in.
fn prepare(args: &ResumeArgs) -> Result<(RunArgs, Resumed), String> {
    let store = store(args.store.as_deref())?;
    let run = store.run(&args.run_id).map_err(|e| e.to_string())?.ok_or_else(|| {
        format!(
            "no durable run `{}` in {}; `kettle runs list` shows the runs there (or pass --store)",
            args.run_id,
            store.location()
        )
    })?;
    if run.status == RunStatus::Completed && args.from.is_none() {
        return Err(format!(
            "run `{}` completed; to run it again from an earlier checkpoint, pass --from N (see `kettle runs show {} --history`)",
            run.run_id, run.run_id
        ));
    }
    let mut checkpoint = store
        .checkpoint(&args.run_id, args.from)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| match args.from {
            Some(n) => format!(
                "run `{}` has no checkpoint {n}; `kettle runs show {} --history` lists them",
                run.run_id, run.run_id
            ),
            None => format!("run `{}` has no checkpoint yet", run.run_id),
        })?;
    let mut answer = None;
    if let Some(text) = &args.input {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(input)) => {
                checkpoint.position.merge_input(&input);
                answer = Some(input.get("answer").cloned().unwrap_or(Value::Object(input)));
            }
            Ok(_) => {
                return Err(
                    "--input must be a JSON object, such as '{\"answer\": \"yes\"}'".into(),
                );
            }
            Err(e) => return Err(format!("--input is not JSON: {e}")),
        }
    }
    let run_args = RunArgs {
        agent: PathBuf::from(&run.agent_file),
        input: None,
        input_file: None,
        output: args.output.clone(),
        trace_dir: args.trace_dir.clone(),
        no_trace: false,
        trace_exporter: Vec::new(),
        trace_endpoint: None,
        traceparent: None,
        tracestate: None,
        max_steps: None,
        limits: Vec::new(),
        record: None,
        replay: None,
        quiet: args.quiet,
        events: args.events,
        checkpoint: true,
        store: args.store.clone(),
        allow_shell_providers: args.allow_shell_providers.clone(),
        precompiled: Default::default(),
    };
    Ok((
        run_args,
        Resumed {
            store,
            checkpoint,
            answer,
        },
    ))
}

pub fn list(args: RunsListArgs) -> u8 {
    let runs = match store(args.store.as_deref()).and_then(|s| s.runs().map_err(|e| e.to_string()))
    {
        Ok(runs) => runs,
        Err(e) => return fail(e),
    };
    println!(
        "{:<24} {:<12} {:>11}  agent",
        "run", "status", "checkpoints"
    );
    for run in runs {
        println!(
            "{:<24} {:<12} {:>11}  {}",
            run.run_id,
            run.status.as_str(),
            run.checkpoints,
            run.agent
        );
    }
    EXIT_OK
}

pub fn show(args: RunsShowArgs) -> u8 {
    let store = match store(args.store.as_deref()) {
        Ok(store) => store,
        Err(e) => return fail(e),
    };
    let run = match store.run(&args.run_id) {
        Ok(Some(run)) => run,
        Ok(None) => {
            return fail(format!(
                "no durable run `{}` in {}",
                args.run_id,
                store.location()
            ));
        }
        Err(e) => return fail(e),
    };
    println!("run      {}", run.run_id);
    println!("agent    {} ({})", run.agent, run.agent_file);
    println!("status   {}", run.status.as_str());
    println!("trace    {}", run.trace_id);
    if args.history {
        match store.history(&run.run_id) {
            Ok(history) => {
                println!("checkpoints:");
                for c in history {
                    println!(
                        "  {:>4}  {:<12} steps {:<5} {}",
                        c.seq,
                        c.status.as_str(),
                        c.steps,
                        c.reason
                    );
                }
            }
            Err(e) => return fail(e),
        }
        return EXIT_OK;
    }
    match store.checkpoint(&run.run_id, None) {
        Ok(Some(c)) => {
            println!(
                "last     checkpoint {} ({}), {} node executions",
                c.seq, c.reason, c.steps
            );
            println!("next     {}", describe_next(&c.position));
            let state = serde_json::to_string_pretty(&Value::Object(c.position.state.clone()))
                .unwrap_or_default();
            println!("state    {state}");
        }
        Ok(None) => println!("last     no checkpoint yet"),
        Err(e) => return fail(e),
    }
    EXIT_OK
}

/// The nodes a position runs next: `a`, or `[b, c] then d` for a parallel group.
fn describe_next(pos: &PathPos) -> String {
    match &pos.group {
        Some(group) => {
            let branches: Vec<String> = group
                .branches
                .iter()
                .map(|b| match b.next.as_deref() {
                    Some(n) if n == group.fan_in => "done".to_string(),
                    _ => describe_next(b),
                })
                .collect();
            format!("[{}] then {}", branches.join(", "), group.fan_in)
        }
        None => pos.next.clone().unwrap_or_else(|| "(end)".into()),
    }
}
