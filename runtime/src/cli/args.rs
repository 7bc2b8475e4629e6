//! The command-line grammar and its help texts.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  kettle run examples/hello/agent.yaml
  kettle run agent.yaml --input '{\"topic\": \"tea\"}' --output final.json
  kettle trace show                 # the latest run's trace, as a tree
  kettle trace show 018f3c2a1b4-9e1d2c3f
  kettle build examples/polyglot/agent.yaml   # build every node folder of an agent
  kettle doctor                     # which node toolchains are installed, and where

Exit codes: 0 the run succeeded, 1 the run failed, 2 bad input (agent file, input, flags).
Environment: KETTLE_CACHE_DIR (built and compiled components), KETTLE_TOOLCHAINS_DIR (node\n\
toolchains, default CACHE/toolchains), KETTLE_LOG (log filter, e.g. debug).";

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
    Run(RunArgs),
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
    #[arg(long, conflicts_with = "trace_dir")]
    pub no_trace: bool,
    /// Stop the run after this many node executions [default: settings.max_steps, else 1000].
    #[arg(long, value_name = "N")]
    pub max_steps: Option<u32>,
    /// Print no summary on stderr (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
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
A build is skipped when the sources, the WIT and the toolchain are unchanged.")]
pub struct BuildArgs {
    /// A node folder, or an agent file (every node folder it references is built).
    pub path: PathBuf,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Install Kettle's own toolchains now (componentize-py, componentize-js, the Rust target).
    #[arg(long)]
    pub install: bool,
}
