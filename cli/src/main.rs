//! The `kettle` command: argument parsing and dispatch, each subcommand in its own module, over
//! the `kettle` library, which knows nothing of the command line.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod args;
mod build;
mod doctor;
mod durable;
mod graph;
mod nats;
mod run;
mod serve;
mod signals;
mod summary;
mod trace;
mod validate;

use args::{Cli, Command, RunsCommand, TraceCommand};
use clap::Parser;
use std::process::ExitCode;

/// The run succeeded.
const EXIT_OK: u8 = 0;
/// The run started but failed (a node failed, a limit was hit, it was interrupted).
const EXIT_RUN_FAILED: u8 = 1;
/// The input was wrong: agent file, input state, component, flags.
const EXIT_BAD_INPUT: u8 = 2;
/// The run stopped at an interrupt, checkpointed: `kettle resume` continues it.
const EXIT_INTERRUPTED: u8 = 3;

/// Parses the command line, runs the command, and returns its exit code.
fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let code = match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Validate(args) => validate::validate(args),
        Command::Graph(args) => graph::graph(args),
        Command::Build(args) => build::build(args),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Serve(args) => serve::serve(args),
        Command::Trace {
            command: TraceCommand::Show(args),
        } => trace::show(args),
        Command::Trace {
            command: TraceCommand::Push(args),
        } => trace::push(args),
        Command::Resume(args) => durable::resume(args),
        Command::Worker(args) => nats::worker(args),
        Command::Submit(args) => nats::submit_cmd(args),
        Command::Result(args) => nats::result(args),
        Command::Publish(args) => nats::publish(args),
        Command::Runs {
            command: RunsCommand::List(args),
        } => durable::list(args),
        Command::Runs {
            command: RunsCommand::Show(args),
        } => durable::show(args),
    };
    ExitCode::from(code)
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KETTLE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,kettle::node=info,wasm_compose=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .fmt_fields(CleanFields::default())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The log's fields as tracing formats them, with every secret redacted and control
/// characters escaped: a line a node logged stays one line, and cannot forge Kettle's own
/// lines nor drive the terminal.
#[derive(Default)]
struct CleanFields(tracing_subscriber::fmt::format::DefaultFields);

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for CleanFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut text = String::new();
        self.0.format_fields(
            tracing_subscriber::fmt::format::Writer::new(&mut text),
            fields,
        )?;
        writer.write_str(&clean(&text))
    }
}

/// `text` as Kettle may print it: secrets redacted, control characters escaped.
fn clean(text: &str) -> String {
    kettle::redact::controls(&kettle::redact::text(text)).into_owned()
}

/// Where Kettle keeps built and compiled components: `$KETTLE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/kettle`, else `~/.cache/kettle`, else `.kettle/cache`.
fn cache_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("KETTLE_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("kettle");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".cache/kettle");
    }
    PathBuf::from(".kettle/cache")
}

/// How many worker threads a command's async runtime gets.
enum Threads {
    /// One: builds and checks, which mostly wait on child processes, and runs of agents
    /// without branches, which execute one node at a time.
    One,
    /// One per core: runs of agents with branches, whose nodes execute concurrently.
    Many,
}

/// How long, once a command is done, Kettle waits for its runtime's blocking threads.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs a command's future to completion on a fresh async runtime; its exit code.
fn block_on(threads: Threads, command: impl std::future::Future<Output = u8>) -> u8 {
    let built = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Threads::Many => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    match built {
        Ok(runtime) => {
            let code = runtime.block_on(command);
            // Everything the command needed is done; a thread still blocked (a node's read of
            // a pipe nobody writes to, say) must not keep Kettle from exiting.
            runtime.shutdown_timeout(EXIT_GRACE);
            code
        }
        Err(e) => {
            eprintln!("kettle: cannot start the async runtime: {e}");
            EXIT_RUN_FAILED
        }
    }
}
