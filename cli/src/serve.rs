//! `kettle serve`: the command line over the kettle-serve library; waits for SIGTERM or Ctrl-C,
//! then says what the drain did. With `--nats`, kettle-worker's queue is wired in as the
//! server's `RunBackend`.

use super::args::ServeArgs;
use super::{EXIT_BAD_INPUT, EXIT_OK, Threads, block_on, cache_dir};
use kettle_serve::{RunBackend, ServeConfig, ServeError};
use std::sync::Arc;
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
    let nats = args.nats;
    block_on(Threads::Many, async move {
        let backend: Option<Arc<dyn RunBackend>> = match &nats {
            Some(url) => match kettle_worker::Jet::connect(url).await {
                Ok(jet) => Some(Arc::new(kettle_worker::NatsBackend::new(jet))),
                Err(e) => {
                    eprintln!("kettle: {}", kettle::redact::text(&e.to_string()));
                    return EXIT_BAD_INPUT;
                }
            },
            None => None,
        };
        let runs_go = backend
            .as_ref()
            .map(|b| format!("; runs go to {}", b.describe()));
        let ready = |addr| {
            eprintln!(
                "kettle: serving on http://{addr} (GET /v1/agents lists the agents){}",
                runs_go.unwrap_or_default()
            )
        };
        match kettle_serve::serve_with(config, backend, ready, shutdown_signal()).await {
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
