//! `kettle serve`: agents loaded, validated and compiled once, then run per HTTP request, with
//! the caller's W3C trace context, bounded concurrency and body size, a bearer token off
//! loopback, and a drain on shutdown that answers or counts every accepted request. The
//! command line lives in kettle-cli; this crate knows nothing of it.

mod auth;
mod backend;
mod catalog;
mod metrics;
mod page;
mod registry;
mod remote;
mod routes;
mod runs;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use backend::{BackendError, QueuedResult, QueuedRun, RunBackend};
pub use catalog::CatalogError;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Agent files, or folders holding an `agent.yaml` or several `*.yaml` agents.
    pub agents: Vec<PathBuf>,
    pub listen: SocketAddr,
    /// Runs at once; a request beyond them gets `429` with `Retry-After`.
    pub max_concurrent_runs: usize,
    /// Largest request body; a larger one gets `413`.
    pub max_body_bytes: usize,
    /// A run's longest time; a request may ask for less (`timeout_ms`), never more.
    pub run_timeout: Duration,
    /// On SIGTERM/SIGINT, how long in-flight runs may go on before they are cancelled.
    pub grace: Duration,
    /// The bearer token every request but `/healthz` and `/readyz` must carry; required when
    /// `listen` is not a loopback address.
    pub token: Option<String>,
    /// Where Kettle keeps built and compiled components.
    pub cache_dir: PathBuf,
    /// `--trace-dir`: where the file exporter writes, beating the agents' settings.
    pub trace_dir: Option<PathBuf>,
    /// `--store`: the SQLite file or postgres:// URL of durable runs' checkpoints; makes every
    /// agent's runs durable. Without it, agents with `settings.checkpoint` or interrupts are
    /// durable in their own store (default `.kettle/state.db`).
    pub store: Option<String>,
}

/// What stops `kettle serve` from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without a token: set KETTLE_SERVE_TOKEN (requests then need `Authorization: Bearer <token>`), or listen on 127.0.0.1"
    )]
    TokenRequired(SocketAddr),
    #[error("{0}")]
    Agents(#[from] CatalogError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped: {0}")]
    Server(std::io::Error),
}

/// What a server did, said when it stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeSummary {
    /// Run requests accepted (past auth, bounds and parsing).
    pub accepted: u64,
    /// Accepted runs that finished (ok or failed) and were answered.
    pub finished: u64,
    /// Accepted runs that ended cancelled: client gone, timeout, or shutdown past the grace.
    pub cancelled: u64,
}

/// Loads every agent (stopping at the first folder or file with errors, all of its errors
/// reported), then serves until `shutdown` resolves; then drains: stops accepting, lets
/// in-flight runs finish within the grace period, cancels the rest, and flushes every trace.
/// `ready` is called with the bound address once requests are accepted.
pub async fn serve(
    config: ServeConfig,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServeSummary, ServeError> {
    serve_with(config, None, ready, shutdown).await
}

/// [`serve`], the runs handed to `backend` (such as a queue of workers) rather than run here
/// when one is given; the agents are still loaded here, to list, draw and check them.
pub async fn serve_with(
    config: ServeConfig,
    backend: Option<Arc<dyn RunBackend>>,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ServeSummary, ServeError> {
    if config.token.is_none() && !config.listen.ip().is_loopback() {
        return Err(ServeError::TokenRequired(config.listen));
    }
    let catalog = catalog::Catalog::load(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServeError::Server)?;
    let state = Arc::new(routes::AppState::new(config.clone(), catalog, backend));
    let app = routes::router(state.clone());
    ready(addr);

    let draining = state.runs.clone();
    let grace = config.grace;
    let stop = async move {
        shutdown.await;
        draining.start_drain(grace);
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(ServeError::Server)?;
    // Connections are closed; runs whose client is gone were cancelled and end on their own.
    state.runs.wait_idle().await;
    let summary = state.runs.summary();
    state.catalog.shutdown().await;
    Ok(summary)
}
