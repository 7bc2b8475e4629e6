//! The signals that stop a command: Ctrl-C, and SIGTERM where there is one.

/// Resolves on Ctrl-C or SIGTERM, naming which.
pub async fn ctrl_c_or_sigterm() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
