//! `kettle trace push`: delivers what earlier processes left in the spools, to the destination
//! each spool names, with the credentials the environment holds now (the spool keeps none).

use super::config::OtlpTarget;
use super::delivery::Sender;
use super::otlp::OtlpClient;
use super::presets;
use super::resolve::parse_headers;
use super::spool::{SpoolTarget, spools};
use crate::spec::{LangfuseSettings, OpikSettings};
use std::path::Path;
use std::time::{Duration, Instant};

/// What one push did at one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// `otlp at http://…`.
    pub destination: String,
    /// Spans that were waiting (of the runs asked for).
    pub waiting: u64,
    pub delivered: u64,
    /// The collector's last error, when something is left.
    pub last_error: Option<String>,
    pub spool: std::path::PathBuf,
}

/// Delivers the spooled batches under `root` (only those of `runs` when it is not empty),
/// trying for at most `timeout` in all.
pub fn push(
    root: &Path,
    runs: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
    otlp_timeout: Duration,
) -> Vec<PushReport> {
    let deadline = Instant::now() + timeout;
    let mut reports = Vec::new();
    for spool in spools(root, u64::MAX) {
        let batches = spool.pending(runs);
        if batches.is_empty() {
            continue;
        }
        let waiting = batches.iter().map(|b| b.spans).sum();
        let dir = spool.dir().to_path_buf();
        let Some(kept) = spool.target() else {
            continue;
        };
        let destination = format!("{} at {}", kept.label, kept.endpoint);
        let client = match OtlpClient::new(&with_credentials(&kept, env, otlp_timeout)) {
            Ok(client) => client,
            Err(e) => {
                reports.push(PushReport {
                    destination,
                    waiting,
                    delivered: 0,
                    last_error: Some(e.to_string()),
                    spool: dir,
                });
                continue;
            }
        };
        let sender = Sender::once(spool, client, batches, deadline);
        sender.run();
        let delivered = sender.shared.delivered();
        reports.push(PushReport {
            destination,
            waiting,
            delivered,
            last_error: (delivered < waiting)
                .then(|| sender.shared.last_error())
                .flatten(),
            spool: dir,
        });
    }
    reports
}

/// The spool's destination with the credentials its kind reads from the environment.
fn with_credentials(
    kept: &SpoolTarget,
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> OtlpTarget {
    let mut headers = match kept.label.as_str() {
        "opik" => presets::opik(&OpikSettings::default(), env, timeout).headers,
        "langfuse" => presets::langfuse(&LangfuseSettings::default(), env, timeout)
            .map(|t| t.headers)
            .unwrap_or_default(),
        _ => {
            let mut headers = parse_headers(&env("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default());
            headers.extend(parse_headers(
                &env("OTEL_EXPORTER_OTLP_TRACES_HEADERS").unwrap_or_default(),
            ));
            headers
        }
    };
    // The project the spans were meant for wins over the environment's.
    headers.extend(kept.headers.clone());
    OtlpTarget {
        label: kept.label.clone(),
        endpoint: kept.endpoint.clone(),
        headers,
        timeout,
    }
}
