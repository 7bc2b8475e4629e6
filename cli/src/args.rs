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
  kettle validate agent.yaml        # every problem of the file at once, no run
  kettle graph agent.yaml --format dot | dot -Tsvg > agent.svg
  kettle build examples/polyglot/agent.yaml   # build every node folder of an agent
  kettle doctor                     # which node toolchains are installed, and where

Exit codes: 0 the run succeeded, 1 the run failed, 2 bad input (agent file, input, flags).
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
    /// Look at the traces of past runs.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
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
    /// Stream one JSON line per node start and finish to stderr, to watch a long run.
    #[arg(long)]
    pub events: bool,
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
}

impl From<GraphFormatArg> for kettle::graph::GraphFormat {
    fn from(format: GraphFormatArg) -> Self {
        match format {
            GraphFormatArg::Mermaid => Self::Mermaid,
            GraphFormatArg::Dot => Self::Dot,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Print a run's trace as a tree, with durations and token counts.
    Show(TraceShowArgs),
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
  Cargo.toml                 Rust: cargo build --release --target wasm32-wasip2
  app.py / pyproject.toml    Python: componentize-py, with the `kettle` SDK
  package.json / *.js        JavaScript: rolldown + componentize-js, with the `kettle` SDK
Toolchains are installed on first use into Kettle's cache (see `kettle doctor`).
A build is skipped when the sources, the WIT and the toolchain are unchanged.
A Python folder that needs nothing but the SDK (no declared dependencies, only the standard
modules the interpreter holds) is not built: `kettle run` runs its source in the Python
interpreter; `--precompile` builds it.")]
pub struct BuildArgs {
    /// A node folder, or an agent file (every node folder it references is built).
    pub path: PathBuf,
    /// Also build the Python folders that need nothing but the SDK (which `kettle run` runs
    /// from source in the Python interpreter); `kettle run` then uses their components.
    #[arg(long)]
    pub precompile: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Install Kettle's own toolchains now (componentize-py, componentize-js, the Rust target).
    #[arg(long)]
    pub install: bool,
}
