//! The connection to NATS and what Kettle needs there, created if missing (by whichever
//! worker or submitter comes first): the runs stream, the outcomes stream, the state bucket.

use crate::WorkerError;
use crate::io::IoThread;
use crate::names::{OUTCOMES_STREAM, RUNS_STREAM, STATE_BUCKET};
use async_nats::jetstream::{self, kv, stream};
use std::sync::Arc;
use std::time::Duration;

/// How long results and dead letters are kept.
const OUTCOMES_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Within this window a request or result published twice under one run id is stored once.
const DEDUP_WINDOW: Duration = Duration::from_secs(10 * 60);

/// A connection to NATS with Kettle's streams and bucket.
#[derive(Clone)]
pub struct Jet {
    pub url: String,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub runs: stream::Stream,
    pub outcomes: stream::Stream,
    pub state: kv::Store,
    /// The thread the connection runs on (shared by every clone).
    pub io: Arc<IoThread>,
}

impl Jet {
    /// Connects to `url` and makes sure the streams and the bucket exist (one replica each
    /// when they are created here).
    pub async fn connect(url: &str) -> Result<Self, WorkerError> {
        Self::connect_with(url, 1).await
    }

    /// Connects to `url`; the streams and the bucket, if created here, keep `replicas` copies
    /// (3 or 5 on a cluster). Existing ones are left as they are.
    pub async fn connect_with(url: &str, replicas: usize) -> Result<Self, WorkerError> {
        let replicas = replicas.max(1);
        let io = Arc::new(IoThread::start().map_err(|e| WorkerError::Nats {
            url: public_url(url),
            message: format!("cannot start the connection's thread: {e}"),
        })?);
        // A cluster's servers, comma-separated; the client learns the others from any one.
        let target: Vec<String> = url.split(',').map(|u| u.trim().to_string()).collect();
        let options = async_nats::ConnectOptions::new()
            .name("kettle")
            .connection_timeout(Duration::from_secs(5));
        let client = io
            .handle()
            .spawn(async move { options.connect(target).await })
            .await
            .map_err(|e| nats_error(url, e))?
            .map_err(|e| WorkerError::Nats {
                url: public_url(url),
                message: format!(
                    "cannot connect: {e}; is a NATS server with JetStream (`nats-server -js`) listening there?"
                ),
            })?;
        let js = jetstream::new(client.clone());
        let runs = js
            .get_or_create_stream(stream::Config {
                name: RUNS_STREAM.into(),
                description: Some("Kettle run requests, one subject per agent".into()),
                subjects: vec!["kettle.runs.>".into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                duplicate_window: DEDUP_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_error(url, format!("the stream {RUNS_STREAM}: {e}")))?;
        let outcomes = js
            .get_or_create_stream(stream::Config {
                name: OUTCOMES_STREAM.into(),
                description: Some("Kettle run results and dead letters".into()),
                subjects: vec!["kettle.results.>".into(), "kettle.dead.>".into()],
                storage: stream::StorageType::File,
                num_replicas: replicas,
                max_age: OUTCOMES_MAX_AGE,
                duplicate_window: DEDUP_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| nats_error(url, format!("the stream {OUTCOMES_STREAM}: {e}")))?;
        let state = bucket(&js, url, replicas).await?;
        Ok(Self {
            url: public_url(url),
            client,
            js,
            runs,
            outcomes,
            state,
            io,
        })
    }
}

/// The state bucket, created as the stream a key-value bucket is made of: the client's
/// `create_key_value` first reads the account's limits in a form a 2.9 server (Debian's
/// `nats-server`) does not send.
async fn bucket(
    js: &jetstream::Context,
    url: &str,
    replicas: usize,
) -> Result<kv::Store, WorkerError> {
    if let Ok(store) = js.get_key_value(STATE_BUCKET).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{STATE_BUCKET}"),
        description: Some("Kettle runs, checkpoints and LLM tapes".into()),
        subjects: vec![format!("$KV.{STATE_BUCKET}.>")],
        max_messages_per_subject: 1,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| nats_error(url, format!("the bucket {STATE_BUCKET}: {e}")))?;
    js.get_key_value(STATE_BUCKET)
        .await
        .map_err(|e| nats_error(url, format!("the bucket {STATE_BUCKET}: {e}")))
}

pub fn nats_error(url: &str, message: impl std::fmt::Display) -> WorkerError {
    WorkerError::Nats {
        url: public_url(url),
        message: message.to_string(),
    }
}

/// `url` without its user and password, for messages.
pub fn public_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        (None, Some(at)) => url[at + 1..].to_string(),
        _ => url.to_string(),
    }
}
