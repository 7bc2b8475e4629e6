//! `kettle worker`, `kettle submit`, `kettle result` and `kettle publish`: runs queued on NATS
//! JetStream, components in its object store, over the kettle-worker library.

use super::{EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED, Threads, block_on, cache_dir};
use clap::Args;
use kettle_worker::{
    Jet, RunRequest, RunResult, Submitted, WorkerConfig, WorkerError, fetch_result, new_run_id,
    submit, submit_and_wait, wait_result,
};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const WORKER_EXAMPLES: &str = "\
Examples:
  nats-server -js &                                   # or a NATS cluster
  kettle worker --nats nats://127.0.0.1:4222 agent.yaml --concurrency 8
  kettle submit --nats nats://127.0.0.1:4222 my-agent --input '{\"topic\": \"tea\"}' --wait
  kettle result --nats nats://127.0.0.1:4222 018f3c2a1b4-9e1d2c3f
  kettle publish --nats nats://127.0.0.1:4222 agent.yaml   # where the agent is built

Components: once an agent is published, its workers run exactly the published components
  (by sha256): one a worker lacks, or has in another version, is fetched from the object
  store bucket KETTLE_COMPONENTS, its digest checked, and cached in the cache folder; an
  agent never published runs from its files, as `kettle run` does.";

#[derive(Debug, Args)]
#[command(after_help = WORKER_EXAMPLES)]
pub struct WorkerArgs {
    /// The NATS server (JetStream enabled), such as nats://127.0.0.1:4222; a cluster's
    /// servers comma-separated.
    #[arg(long, value_name = "URL", env = "KETTLE_NATS_URL")]
    pub nats: String,
    /// The agent files this worker runs (requests of other agents are left to other workers).
    #[arg(required = true)]
    pub agents: Vec<PathBuf>,
    /// Runs at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds a request may go without word from its worker before another worker gets it;
    /// a live run sends word every third of it.
    #[arg(long, default_value_t = 30)]
    pub ack_wait: u64,
    /// Deliveries of a request before it goes, with its last error, to kettle.dead.AGENT.
    #[arg(long, default_value_t = 5)]
    pub max_deliver: i64,
    /// Where the file exporter writes traces (beats the agents' settings).
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
    /// Names this worker in results [default: host name and process id].
    #[arg(long)]
    pub name: Option<String>,
    /// Copies of the queue, results and state, when this worker is the first and creates
    /// them (3 or 5 on a NATS cluster).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
}

#[derive(Debug, Args)]
#[command(after_help = WORKER_EXAMPLES)]
pub struct SubmitArgs {
    /// The NATS server (JetStream enabled).
    #[arg(long, value_name = "URL", env = "KETTLE_NATS_URL")]
    pub nats: String,
    /// The agent's `name`.
    pub agent: String,
    /// The initial state, a JSON object.
    #[arg(
        long,
        value_name = "JSON",
        default_value = "{}",
        conflicts_with = "inputs"
    )]
    pub input: String,
    /// Many runs: a file of JSON objects, one initial state a line ("-" for stdin); their
    /// ids are RUN_ID-1, RUN_ID-2, ... With --wait, the results are printed as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub inputs: Option<PathBuf>,
    /// The run's id [default: a new one]; submitting an id twice within ten minutes queues it once.
    #[arg(long)]
    pub run_id: Option<String>,
    /// Wait for the run's result and print it (exit 0 completed, 1 failed or interrupted).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: seconds to wait.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// The caller's span (W3C traceparent): the run's root becomes its child.
    #[arg(long, env = "TRACEPARENT")]
    pub traceparent: Option<String>,
}

#[derive(Debug, Args)]
#[command(after_help = WORKER_EXAMPLES)]
pub struct PublishArgs {
    /// The NATS server (JetStream enabled).
    #[arg(long, value_name = "URL", env = "KETTLE_NATS_URL")]
    pub nats: String,
    /// The agent files whose components to publish (built and compiled first if need be).
    #[arg(required = true)]
    pub agents: Vec<PathBuf>,
    /// Copies of the components bucket, when this command creates it.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
}

#[derive(Debug, Args)]
pub struct ResultArgs {
    /// The NATS server (JetStream enabled).
    #[arg(long, value_name = "URL", env = "KETTLE_NATS_URL")]
    pub nats: String,
    /// The run's id (printed by `kettle submit`).
    pub run_id: String,
    /// Wait this many seconds for a run that has not ended yet.
    #[arg(long, value_name = "SECONDS")]
    pub wait: Option<u64>,
}

fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("kettle: {}", kettle::redact::text(&message.to_string()));
    EXIT_BAD_INPUT
}

fn exit_code(error: &WorkerError) -> u8 {
    match error {
        WorkerError::Timeout { .. } => EXIT_RUN_FAILED,
        _ => EXIT_BAD_INPUT,
    }
}

pub fn worker(args: WorkerArgs) -> u8 {
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let config = WorkerConfig {
        nats_url: args.nats,
        agents: args.agents,
        concurrency: args.concurrency.max(1),
        ack_wait: Duration::from_secs(args.ack_wait.max(3)),
        max_deliver: args.max_deliver.max(1),
        cache_dir: cache_dir(),
        trace_dir: args.trace_dir,
        name,
        replicas: args.replicas,
    };
    block_on(Threads::Many, async move {
        let ready = |agents: &[String], fetched: &[kettle_worker::Fetched]| {
            for f in fetched {
                eprintln!(
                    "kettle: fetched component {} ({}, {} bytes) of agent {} from the object store in {} ms",
                    f.sha256,
                    f.source,
                    f.bytes,
                    f.agent,
                    f.took.as_millis()
                );
            }
            eprintln!("kettle: worker ready for agents: {}", agents.join(", "));
        };
        match kettle_worker::work(config, ready, stop_signal()).await {
            Ok(summary) => {
                eprintln!(
                    "kettle: worker stopped: {} runs completed, {} failed, {} handed back to the queue, {} dead letters",
                    summary.completed, summary.failed, summary.returned, summary.dead
                );
                EXIT_OK
            }
            Err(e) => fail(e),
        }
    })
}

pub fn submit_cmd(args: SubmitArgs) -> u8 {
    if let Some(file) = &args.inputs {
        return submit_many(&args, file);
    }
    let input = match serde_json::from_str::<Value>(&args.input) {
        Ok(Value::Object(input)) => input,
        Ok(_) => return fail("--input must be a JSON object, such as '{\"topic\": \"tea\"}'"),
        Err(e) => return fail(format!("--input is not JSON: {e}")),
    };
    let request = RunRequest {
        run_id: args.run_id.clone().unwrap_or_else(new_run_id),
        agent: args.agent.clone(),
        input,
        traceparent: args.traceparent.clone().filter(|t| !t.trim().is_empty()),
    };
    block_on(Threads::One, async move {
        let jet = match Jet::connect(&args.nats).await {
            Ok(jet) => jet,
            Err(e) => return fail(e),
        };
        if args.wait {
            return match submit_and_wait(&jet, &request, Duration::from_secs(args.timeout)).await {
                Ok(result) => print_result(&result),
                Err(e) => {
                    let code = exit_code(&e);
                    let _ = fail(e);
                    code
                }
            };
        }
        match submit(&jet, &request).await {
            Ok(Submitted::Queued) => {
                println!("{}", request.run_id);
                EXIT_OK
            }
            Ok(Submitted::Duplicate) => {
                eprintln!(
                    "kettle: run {} was submitted moments ago; this submission was dropped",
                    request.run_id
                );
                println!("{}", request.run_id);
                EXIT_OK
            }
            Err(e) => fail(e),
        }
    })
}

/// `kettle submit --inputs FILE`: one run per line.
fn submit_many(args: &SubmitArgs, file: &std::path::Path) -> u8 {
    let text = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => return fail(format!("--inputs {}: {e}", file.display())),
    };
    let prefix = args.run_id.clone().unwrap_or_else(new_run_id);
    let mut requests = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(input)) => requests.push(RunRequest {
                run_id: format!("{prefix}-{}", requests.len() + 1),
                agent: args.agent.clone(),
                input,
                traceparent: args.traceparent.clone().filter(|t| !t.trim().is_empty()),
            }),
            _ => {
                return fail(format!(
                    "--inputs {}:{}: each line must be a JSON object (one run's initial state)",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
    let (nats, wait, timeout) = (args.nats.clone(), args.wait, args.timeout);
    block_on(Threads::One, async move {
        let jet = match Jet::connect(&nats).await {
            Ok(jet) => jet,
            Err(e) => return fail(e),
        };
        if !wait {
            for request in &requests {
                if let Err(e) = submit(&jet, request).await {
                    return fail(e);
                }
                println!("{}", request.run_id);
            }
            return EXIT_OK;
        }
        match kettle_worker::submit_all_and_wait(&jet, &requests, Duration::from_secs(timeout))
            .await
        {
            Ok(results) => {
                for result in &results {
                    println!("{}", serde_json::to_string(result).unwrap_or_default());
                }
                if results.iter().all(|r| r.status == "completed") {
                    EXIT_OK
                } else {
                    EXIT_RUN_FAILED
                }
            }
            Err(e) => {
                let code = exit_code(&e);
                let _ = fail(e);
                code
            }
        }
    })
}

pub fn publish(args: PublishArgs) -> u8 {
    block_on(Threads::Many, async move {
        let jet = match Jet::connect(&args.nats).await {
            Ok(jet) => jet,
            Err(e) => return fail(e),
        };
        match kettle_worker::publish_files(&jet, &args.agents, &cache_dir(), args.replicas).await {
            Ok(published) => {
                for agent in &published {
                    for c in &agent.components {
                        println!("{} {} {} {}", agent.agent, c.sha256, c.bytes, c.source);
                    }
                    eprintln!(
                        "kettle: published agent {}: {} components, {} uploaded (the others were there already)",
                        agent.agent,
                        agent.components.len(),
                        agent.uploaded
                    );
                }
                EXIT_OK
            }
            Err(e) => fail(e),
        }
    })
}

pub fn result(args: ResultArgs) -> u8 {
    block_on(Threads::One, async move {
        let jet = match Jet::connect(&args.nats).await {
            Ok(jet) => jet,
            Err(e) => return fail(e),
        };
        let found = match args.wait {
            Some(secs) => wait_result(&jet, &args.run_id, Duration::from_secs(secs))
                .await
                .map(Some),
            None => fetch_result(&jet, &args.run_id).await,
        };
        match found {
            Ok(Some(result)) => print_result(&result),
            Ok(None) => fail(format!(
                "run {} has no result yet (queued, running, or unknown); wait for it with --wait SECONDS",
                args.run_id
            )),
            Err(e) => {
                let code = exit_code(&e);
                let _ = fail(e);
                code
            }
        }
    })
}

/// The result as JSON on stdout; its error, if any, on stderr.
fn print_result(result: &RunResult) -> u8 {
    println!(
        "{}",
        serde_json::to_string_pretty(result).unwrap_or_default()
    );
    if let Some(error) = &result.error {
        eprintln!("kettle: run {} {}: {error}", result.run_id, result.status);
    }
    if result.status == "completed" {
        EXIT_OK
    } else {
        EXIT_RUN_FAILED
    }
}

/// Resolves on Ctrl-C or SIGTERM: the worker stops taking requests and hands its runs back.
async fn stop_signal() {
    super::signals::ctrl_c_or_sigterm().await;
    eprintln!(
        "kettle: stopping: no new requests; runs in flight go back to the queue, to resume from their checkpoints"
    );
}
