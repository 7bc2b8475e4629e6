//! `kettle serve`: the command line over the kettle-serve library; waits for SIGTERM or Ctrl-C,
//! then says what the drain did.

use super::args::ServeArgs;
use super::{EXIT_BAD_INPUT, EXIT_OK, Threads, block_on, cache_dir};
use kettle_serve::{ServeConfig, ServeError};
use std::time::Duration;

pub fn serve(args: ServeArgs) -> u8 {
    let config = ServeConfig {
        agents: args.agents,
        listen: args.listen,
        max_concurrent_runs: args.max_concurrent_runs.max(1),
        max_body_bytes: args.max_body_bytes,
        run_timeout: Duration::from_secs(args.timeout.max(1)),
        grace: Duration::from_secs(args.grace),
        // From the environment only: a flag would show the token in `ps`.
        token: std::env::var("KETTLE_SERVE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
        cache_dir: cache_dir(),
        trace_dir: args.trace_dir,
        store: args.store,
    };
    block_on(Threads::Many, async move {
        let ready =
            |addr| eprintln!("kettle: serving on http://{addr} (GET /v1/agents lists the agents)");
        match kettle_serve::serve(config, ready, shutdown_signal()).await {
            Ok(summary) => {
                eprintln!(
                    "kettle: stopped: {} runs accepted, {} answered, {} cancelled",
                    summary.accepted, summary.finished, summary.cancelled
                );
                EXIT_OK
            }
            Err(
                e @ (ServeError::Agents(_)
                | ServeError::TokenRequired(_)
                | ServeError::Listen { .. }),
            ) => {
                eprintln!("kettle: {}", kettle::redact::text(&e.to_string()));
                EXIT_BAD_INPUT
            }
            Err(e) => {
                eprintln!("kettle: {e}");
                super::EXIT_RUN_FAILED
            }
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    super::signals::ctrl_c_or_sigterm().await;
    eprintln!("kettle: shutting down: no new runs; in-flight runs have the grace period to finish");
}
