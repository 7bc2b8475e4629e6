//! The command-line grammar and its help texts.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  kettle run examples/hello/agent.yaml
  kettle run agent.yaml --input '{\"topic\": \"tea\"}' --output final.json
  kettle run agent.yaml --record calls.jsonl   # then: --replay calls.jsonl, offline
  kettle trace show                 # the latest run's trace, as a tree
  kettle trace show 018f3c2a1b4-9e1d2c3f
  kettle trace push                 # deliver the spans a collector outage left in the spool
  kettle validate agent.yaml        # every problem of the file at once, no run
  kettle graph agent.yaml --format dot | dot -Tsvg > agent.svg
  kettle build examples/polyglot/agent.yaml   # build every node folder of an agent
  kettle doctor                     # which node toolchains are installed, and where
  kettle run agent.yaml --checkpoint   # durable: kill it, then `kettle resume RUN_ID`
  kettle runs list                  # durable runs and their status
  kettle resume 018f3c2a1b4-9e1d2c3f --input '{\"answer\": \"yes\"}'

Exit codes: 0 the run succeeded, 1 the run failed, 2 bad input (agent file, input, flags),
  3 the run stopped at an interrupt (checkpointed; continue it with `kettle resume`).
Environment: KETTLE_CACHE_DIR (built and compiled components), KETTLE_TOOLCHAINS_DIR (node
  toolchains, default CACHE/toolchains), KETTLE_LOG (log filter, e.g. debug),
  TRACEPARENT (join a trace), OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT / _HEADERS,
  OTEL_SERVICE_NAME, OTEL_SDK_DISABLED, OPIK_API_KEY / OPIK_PROJECT_NAME / OPIK_WORKSPACE.
Trace settings: flags beat settings.tracing in the agent file, which beats the environment.";

/// Run LLM agent graphs whose nodes are sandboxed WebAssembly components, with a complete
/// trace of every node and LLM call.
#[derive(Debug, Parser)]
#[command(name = "kettle", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an agent: prints the final state as JSON on stdout and a summary on stderr.
    #[command(after_help = EXAMPLES)]
    Run(Box<RunArgs>),
    /// Check an agent file without running it: every problem at once, each with
    /// file:line:column and a hint (exit 0 valid, 2 invalid).
    Validate(ValidateArgs),
    /// Print an agent's graph (Mermaid or Graphviz DOT): routes with their conditions,
    /// parallel groups as clusters.
    Graph(GraphArgs),
    /// Build node folders into components (Rust, Python, JavaScript); `run` does it too.
    Build(BuildArgs),
    /// Show which toolchains for building nodes are installed, where, and what is missing.
    Doctor(DoctorArgs),
    /// Serve agents over HTTP: loaded and compiled once, one run per request, with the
    /// caller's trace context, bounded concurrency and a drain on SIGTERM.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Look at the traces of past runs.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
    /// Continue a durable run from its last checkpoint (after a crash or an interrupt), or
    /// fork it from an earlier one with --from.
    Resume(ResumeArgs),
    /// List durable runs and their checkpoints.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Run queued runs from NATS JetStream: many workers on many machines share the queue;
    /// a run whose worker dies is resumed by another from its last checkpoint.
    Worker(crate::nats::WorkerArgs),
    /// Queue a run for the workers on NATS JetStream (prints its id; --wait for its result).
    Submit(crate::nats::SubmitArgs),
    /// The result of a run submitted with `kettle submit`.
    Result(crate::nats::ResultArgs),
    /// Publish an agent's components (node .wasm files, built node folders, inline-code
    /// interpreters) to the NATS object store by sha256; workers run exactly these, fetching
    /// the ones they lack.
    Publish(crate::nats::PublishArgs),
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run's id (see `kettle runs list`).
    pub run_id: String,
    /// Keys merged into the state before the run continues (the answer to an interrupt).
    #[arg(long, value_name = "JSON")]
    pub input: Option<String>,
    /// Resume from this checkpoint (`kettle runs show RUN_ID --history`) instead of the last.
    #[arg(long, value_name = "CHECKPOINT")]
    pub from: Option<u64>,
    /// The checkpoint store: a SQLite file, or a postgres:// URL [default: .kettle/state.db].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Write the final state to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Folder for the trace files [default: settings.tracing.dir, else .kettle/traces].
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
    /// Print no summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Stream one JSON line per node start and finish, streamed LLM chunk and LLM call to stderr.
    #[arg(long)]
    pub events: bool,
    /// As for `kettle run`: let the agent's shell provider NAME run its program (grants are
    /// not stored with the run; give them again).
    #[arg(
        long = "allow-shell-provider",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allow_shell_providers: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Every durable run, newest first: id, status, agent, checkpoints.
    List(RunsListArgs),
    /// One run: its status and last checkpoint (the next nodes, the state), or all its
    /// checkpoints with --history.
    Show(RunsShowArgs),
}

#[derive(Debug, Args)]
pub struct RunsListArgs {
    /// The checkpoint store: a SQLite file, or a postgres:// URL [default: .kettle/state.db].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunsShowArgs {
    pub run_id: String,
    /// List every checkpoint of the run.
    #[arg(long)]
    pub history: bool,
    /// The checkpoint store: a SQLite file, or a postgres:// URL [default: .kettle/state.db].
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

const SERVE_EXAMPLES: &str = "\
Examples:
  kettle serve examples/hello/agent.yaml
  curl -s localhost:8080/v1/agents/hello/runs -d '{\"input\": {\"topic\": \"tea\"}}'
  curl -N localhost:8080/v1/agents/hello/runs -H 'Accept: text/event-stream' -d '{}'
  KETTLE_SERVE_TOKEN=$(openssl rand -hex 32) kettle serve agents/ --listen 0.0.0.0:8080
  kettle serve --nats nats://127.0.0.1:4222 agent.yaml   # runs go to `kettle worker`s

Environment: KETTLE_SERVE_TOKEN, the bearer token every request but /healthz and /readyz must
  carry (`Authorization: Bearer ...`); required to listen anywhere but loopback.

Routes: POST /v1/agents/{name}/runs ({\"input\": {...}, \"timeout_ms\": N}; JSON answer, or
  server-sent events with Accept: text/event-stream), GET /v1/agents, GET /v1/runs[?status=],
  GET /v1/runs/{id}, POST /v1/runs/{id}/resume ({\"input\": {\"answer\": ...}}: a durable run
  stopped at an interrupt continues), GET /healthz, GET /readyz, GET /metrics (Prometheus text),
  GET / (a page: the agents' graphs, a run form, live events, the state, the span tree).
Answers: 200 run ok, 202 run stopped at an interrupt, 422 run failed, 504 run cancelled at its timeout, 429 at the concurrency
  limit (with Retry-After), 413 body too large, 401 bad token, 503 shutting down. Each run's
  answer carries `traceparent` naming its root span; a request's `traceparent` makes the run
  part of the caller's trace.

With --nats: each run is queued for the workers (as `kettle submit` does) and waited for within
  the timeout (504 past it, the run going on: GET /v1/runs/{id} fetches its result later); the
  answer has the same JSON, plus `worker`; events stream when the worker publishes them.";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Agent files, or folders holding an agent.yaml or several *.yaml agents.
    #[arg(required = true)]
    pub agents: Vec<PathBuf>,
    /// The address to listen on. Anything but loopback needs KETTLE_SERVE_TOKEN.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Runs at once; beyond them a request gets 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub max_concurrent_runs: usize,
    /// The largest request body, in bytes; a larger one gets 413.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// A run's longest time, in seconds; a request may ask for less with `timeout_ms`.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// On SIGTERM or Ctrl-C, seconds in-flight runs may go on before they are cancelled.
    #[arg(long, default_value_t = 30)]
    pub grace: u64,
    /// Where the file exporter writes traces (beats the agents' settings).
    #[arg(long)]
    pub trace_dir: Option<PathBuf>,
    /// Make every agent's runs durable, checkpointed in this SQLite file or postgres:// URL;
    /// without it, agents with settings.checkpoint or interrupts are durable in their own
    /// store (default .kettle/state.db). Interrupted runs continue with POST /v1/runs/{id}/resume.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Run nothing here: queue each run on this NATS server (JetStream) for `kettle worker`s
    /// and answer with its result; GET /v1/runs/{id} reads results kept there.
    #[arg(long, value_name = "URL", conflicts_with = "store")]
    pub nats: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The agent file (YAML).
    pub agent: PathBuf,
    /// The initial state, a JSON object.
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    pub input: Option<String>,
    /// Read the initial state from a JSON file ("-" for stdin).
    #[arg(long, value_name = "FILE")]
    pub input_file: Option<PathBuf>,
    /// Write the final state to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Folder for the trace files [default: settings.tracing.dir, else .kettle/traces].
    #[arg(long, value_name = "DIR")]
    pub trace_dir: Option<PathBuf>,
    /// Do not write a trace.
    #[arg(long, conflicts_with_all = ["trace_dir", "trace_exporter", "trace_endpoint"])]
    pub no_trace: bool,
    /// Where spans go: file, otlp, console, opik, langfuse or none; repeat or separate with
    /// commas for several [default: settings.tracing.exporter, else file, plus otlp when an
    /// endpoint is configured, plus opik/langfuse when settings.opik/langfuse are present].
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub trace_exporter: Vec<String>,
    /// OTLP/HTTP traces URL, such as http://localhost:4318/v1/traces [default:
    /// settings.tracing.endpoint, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else
    /// OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces]; implies the otlp exporter.
    #[arg(long, value_name = "URL")]
    pub trace_endpoint: Option<String>,
    /// Join the caller's trace: the run's root span becomes a child of this W3C traceparent
    /// (00-<trace id>-<span id>-<flags>).
    #[arg(long, value_name = "TRACEPARENT", env = "TRACEPARENT")]
    pub traceparent: Option<String>,
    /// The caller's W3C tracestate, carried with --traceparent to the LLM providers.
    #[arg(long, value_name = "TRACESTATE", env = "TRACESTATE")]
    pub tracestate: Option<String>,
    /// Stop the run after this many node executions [default: settings.max_steps, else 1000].
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u32>,
    /// Override a limit of every node, beating the agent file: KEY=VALUE with KEY one of
    /// memory_mb, timeout_ms, fuel, max_llm_calls, max_llm_tokens, max_output_bytes,
    /// max_log_lines, max_log_bytes, max_error_bytes. Repeatable.
    #[arg(long = "limit", value_name = "KEY=VALUE")]
    pub limits: Vec<String>,
    /// Write every LLM request and answer of the run to FILE (JSON lines; API keys redacted).
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    pub record: Option<PathBuf>,
    /// Answer every LLM call from a file written by --record, with no network: the run is
    /// reproduced exactly. A call the file lacks fails the run, saying which.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Print no summary on stderr (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// Stream one JSON line per node start and finish, streamed LLM chunk and LLM call to
    /// stderr, to watch a long run.
    #[arg(long)]
    pub events: bool,
    /// Let the agent's shell provider NAME (TEA's `settings.llm.shell_providers`, or the
    /// built-in claude, gemini, qwen) run its program on this machine for this run's LLM
    /// calls; without it such a call is denied. Repeat or separate with commas.
    #[arg(
        long = "allow-shell-provider",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub allow_shell_providers: Vec<String>,
    #[command(flatten)]
    pub precompiled: PrecompiledArgs,
    /// Make the run durable: a checkpoint after every node in the store (settings.checkpoint,
    /// else .kettle/state.db), so that `kettle resume RUN_ID` continues it after a crash.
    #[arg(long)]
    pub checkpoint: bool,
    /// The checkpoint store: a SQLite file or a postgres://USER:PASSWORD@HOST:PORT/DATABASE
    /// URL [default: settings.checkpoint.url, else .kettle/state.db]; implies --checkpoint.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The agent file (YAML).
    pub agent: PathBuf,
    /// Count warnings (unreachable nodes, edges never taken) as problems.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The agent file (YAML).
    pub agent: PathBuf,
    /// `mermaid` (paste into Markdown) or `dot` (render with Graphviz).
    #[arg(long, value_enum, default_value_t = GraphFormatArg::Mermaid)]
    pub format: GraphFormatArg,
}

/// The drawing formats of `kettle graph`, as the command line spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormatArg {
    Mermaid,
    Dot,
    /// Nodes, edges and parallel groups as JSON, for tools that draw the graph themselves.
    Json,
}

impl From<GraphFormatArg> for kettle::graph::GraphFormat {
    fn from(format: GraphFormatArg) -> Self {
        match format {
            GraphFormatArg::Mermaid => Self::Mermaid,
            GraphFormatArg::Dot => Self::Dot,
            GraphFormatArg::Json => Self::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Print a run's trace as a tree, with durations and token counts.
    Show(TraceShowArgs),
    /// Deliver the spans earlier runs left in the spool (their collector was down at exit).
    Push(TracePushArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
Each spool folder names its destination (endpoint, Opik or Langfuse project); credentials are
never spooled and are read from the environment: OTEL_EXPORTER_OTLP_(TRACES_)HEADERS for otlp,
OPIK_API_KEY for Opik, LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY for Langfuse.")]
pub struct TracePushArgs {
    /// Run ids whose spans to deliver [default: every run in the spool].
    pub runs: Vec<String>,
    /// The spool folder [default: KETTLE_SPOOL_DIR, else .kettle/spool].
    #[arg(long, value_name = "DIR")]
    pub spool_dir: Option<PathBuf>,
    /// How long to keep trying, in milliseconds, before leaving the rest in the spool.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct TraceShowArgs {
    /// A run id, or a trace file [default: the latest run in --dir].
    pub run: Option<String>,
    /// Where trace files are.
    #[arg(long, value_name = "DIR", default_value = ".kettle/traces")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
#[command(after_help = "\
A node folder is built by its language:
  Cargo.toml                 Rust: cargo rustc --lib --release --target wasm32-wasip2, with a
                             256 KiB shadow stack unless its rustflags set `stack-size`
  app.py / pyproject.toml    Python: componentize-py, with the `kettle` SDK
  package.json / *.js        JavaScript: rolldown + componentize-js, with the `kettle` SDK
Toolchains are installed on first use into Kettle's cache (see `kettle doctor`).
A build is skipped when the sources, the WIT and the toolchain are unchanged.
A Python folder that needs nothing but the SDK (no declared dependencies, only the standard
modules the interpreter holds) is not built: `kettle run` runs its source in the Python
interpreter; `--precompile` builds it.

With --precompile and an agent file, every component of the agent (node folders, .wasm files,
the interpreters of its inline code) is also compiled ahead of time, for this machine or for
--target, into .cwasm files beside a manifest.json, in
.kettle/precompiled/{agent file stem}/{target}/ beside the agent file unless --out says
where. `kettle run` loads them instead of compiling; a runtime-only kettle (built without
Cranelift) runs only them. Copy the agent's folder with its .kettle/precompiled/ to the
device:
  kettle build --precompile agent.yaml --target aarch64-unknown-linux-gnu")]
pub struct BuildArgs {
    /// A node folder, or an agent file (every node folder it references is built).
    pub path: PathBuf,
    /// Also build the Python folders that need nothing but the SDK (which `kettle run` runs
    /// from source in the Python interpreter); for an agent file, also compile every
    /// component ahead of time (.cwasm files and their manifest).
    #[arg(long)]
    pub precompile: bool,
    /// The target triple to compile for with --precompile, such as
    /// aarch64-unknown-linux-gnu [default: this machine's].
    #[arg(long, value_name = "TRIPLE", requires = "precompile")]
    pub target: Option<String>,
    /// Where --precompile writes the manifest and .cwasm files [default:
    /// .kettle/precompiled/{agent file stem}/{target}/ beside the agent file].
    #[arg(long, value_name = "DIR", requires = "precompile")]
    pub out: Option<PathBuf>,
}

/// Where a run finds the components `kettle build --precompile` compiled.
#[derive(Debug, Args, Default, Clone)]
pub struct PrecompiledArgs {
    /// The folder of the agent's precompiled components (its manifest.json) [default:
    /// .kettle/precompiled/{agent file stem}/{this machine's target}/ beside the agent file,
    /// used when it exists].
    #[arg(long, value_name = "DIR")]
    pub precompiled: Option<PathBuf>,
    /// Run only precompiled components, as a runtime-only kettle (built without Cranelift)
    /// does, and refuse the others: checks that a precompiled agent is complete.
    #[arg(long)]
    pub precompiled_only: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Install Kettle's own toolchains now (componentize-py, componentize-js, the Rust target).
    #[arg(long)]
    pub install: bool,
}
