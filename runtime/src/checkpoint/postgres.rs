//! The checkpoint store for many machines: tables in a Postgres database (`kettle_runs`,
//! `kettle_checkpoints`, `kettle_llm_calls`), created on open, one transaction per checkpoint.
//!
//! The store's trait is synchronous and the engine calls it from its tokio worker threads,
//! where the sync `postgres` client cannot run (it drives its own runtime and panics inside
//! another). So one dedicated thread owns the connection and runs each call sent to it; the
//! caller waits for the answer, as it waits for SQLite's disk. The thread reconnects when the
//! connection was lost, and ends when the store is dropped.
//!
//! Connections are plain (no TLS): reach the server over a private network, its Unix socket
//! (`postgres://USER@%2Frun%2Fpostgresql/DATABASE`) or a tunnel; a URL asking for
//! `sslmode=require` is refused with that reason.

use super::model::{Checkpoint, CheckpointSummary, RunRecord, RunStatus, now_ms};
use super::store::{CheckpointStore, StoreError};
use crate::llm::TapeEntry;
use postgres::config::Host;
use postgres::{Client, Config, NoTls, Row};
use std::sync::mpsc;
use std::time::Duration;

/// Creating the tables under an advisory lock: `CREATE TABLE IF NOT EXISTS` alone races when
/// several processes open a fresh database at once (both try to create the table's type).
const SCHEMA: &str = "
SELECT pg_advisory_xact_lock(7305411802577207);
CREATE TABLE IF NOT EXISTS kettle_runs (
    run_id TEXT PRIMARY KEY, agent TEXT NOT NULL, agent_file TEXT NOT NULL,
    status TEXT NOT NULL, trace_id TEXT NOT NULL, root_span_id TEXT NOT NULL,
    created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, checkpoints BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS kettle_checkpoints (
    run_id TEXT NOT NULL, seq BIGINT NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
    steps BIGINT NOT NULL, created_ms BIGINT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS kettle_llm_calls (
    run_id TEXT NOT NULL, exec TEXT NOT NULL, ordinal BIGINT NOT NULL, entry TEXT NOT NULL,
    PRIMARY KEY (run_id, exec, ordinal));
";

const RUN_COLUMNS: &str = "run_id, agent, agent_file, status, trace_id, root_span_id, created_ms, updated_ms, checkpoints";

/// Without a `connect_timeout` in the URL, an unreachable server fails the open after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `url` names a Postgres database (and so selects this store).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// What the connection thread runs: one call, its answer sent back by the closure itself.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The connection thread's side: the client, reopened when it was lost.
struct Connection {
    config: Config,
    client: Option<Client>,
}

impl Connection {
    fn client(&mut self) -> Result<&mut Client, postgres::Error> {
        let client = match self.client.take() {
            Some(client) if !client.is_closed() => client,
            _ => self.config.connect(NoTls)?,
        };
        Ok(self.client.insert(client))
    }
}

#[derive(Debug)]
pub struct PostgresStore {
    location: String,
    jobs: mpsc::Sender<Job>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`) and
    /// creates the store's tables if they are missing.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let open_error = |at: &str, message: String| StoreError::Open {
            at: at.to_string(),
            message,
        };
        let mut config: Config = url.parse().map_err(|e| {
            open_error(
                "(a Postgres URL)",
                format!(
                    "this is not a Postgres URL ({e}); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE"
                ),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let location = location_of(&config);
        let (jobs, queue) = mpsc::channel::<Job>();
        let (opened, opening) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("kettle-postgres".into())
            .spawn(move || {
                let mut connection = Connection {
                    config,
                    client: None,
                };
                let ready = connection.client().and_then(|client| {
                    let mut tx = client.transaction()?;
                    tx.batch_execute(SCHEMA)?;
                    tx.commit()
                });
                let failed = ready.is_err();
                let _ = opened.send(ready.map_err(|e| describe(&e)));
                if failed {
                    return;
                }
                for job in queue {
                    job(&mut connection);
                }
            })
            .map_err(|e| open_error(&location, format!("cannot start its thread: {e}")))?;
        match opening.recv() {
            Ok(Ok(())) => Ok(Self { location, jobs }),
            Ok(Err(message)) => Err(open_error(&location, message)),
            Err(_) => Err(open_error(&location, "its connection thread died".into())),
        }
    }

    /// Runs `call` on the connection thread and waits for its answer. A connection the server
    /// closed (a restart, a failover) is only noticed when used: then the call is made once
    /// more on a new connection. Every call is safe to repeat (a `save` whose commit was lost
    /// with the connection may be saved twice, as two consecutive equal checkpoints).
    fn call<R: Send + 'static>(
        &self,
        call: impl Fn(&mut Client) -> Result<R, Failure> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |connection| {
            let mut result = connection.client().map_err(Failure::Query).and_then(&call);
            if matches!(&result, Err(Failure::Query(e)) if e.is_closed()) {
                connection.client = None;
                result = connection.client().map_err(Failure::Query).and_then(&call);
            }
            let _ = answer.send(result);
        });
        let lost = || StoreError::Query {
            at: self.location.clone(),
            message: "the store's connection thread is gone".into(),
        };
        self.jobs.send(job).map_err(|_| lost())?;
        match answered.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(Failure::Query(e))) => Err(StoreError::Query {
                at: self.location.clone(),
                message: describe(&e),
            }),
            Ok(Err(Failure::Missing(message))) => Err(StoreError::Query {
                at: self.location.clone(),
                message,
            }),
            Ok(Err(Failure::Corrupt(message))) => Err(StoreError::Corrupt {
                at: self.location.clone(),
                message,
            }),
            Err(_) => Err(lost()),
        }
    }
}

/// Why a call on the connection thread failed.
enum Failure {
    Query(postgres::Error),
    Missing(String),
    Corrupt(String),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Self::Query(e)
    }
}

/// The error with the server's own message (`postgres::Error`'s display alone is often just
/// "db error").
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// The database's address for messages: user, hosts, ports and database, never the password.
fn location_of(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config
                .get_ports()
                .get(i)
                .or(config.get_ports().first())
                .map_or(String::new(), |p| format!(":{p}"));
            match host {
                Host::Tcp(name) => format!("{name}{port}"),
                Host::Unix(path) => format!("[{}]{port}", path.display()),
            }
        })
        .collect();
    let user = config.get_user().map_or(String::new(), |u| format!("{u}@"));
    format!(
        "postgres://{user}{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or("")
    )
}

fn status_of(text: &str) -> RunStatus {
    RunStatus::parse(text).unwrap_or(RunStatus::Failed)
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn run_of(row: &Row) -> Result<RunRecord, postgres::Error> {
    Ok(RunRecord {
        run_id: row.try_get(0)?,
        agent: row.try_get(1)?,
        agent_file: row.try_get(2)?,
        status: status_of(row.try_get(3)?),
        trace_id: row.try_get(4)?,
        root_span_id: row.try_get(5)?,
        created_ms: count(row.try_get(6)?),
        updated_ms: count(row.try_get(7)?),
        checkpoints: count(row.try_get(8)?),
    })
}

fn corrupt(e: impl std::fmt::Display) -> Failure {
    Failure::Corrupt(e.to_string())
}

impl CheckpointStore for PostgresStore {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn put_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let run = run.clone();
        self.call(move |db| {
            db.execute(
                "INSERT INTO kettle_runs (run_id, agent, agent_file, status, trace_id, root_span_id, created_ms, updated_ms, checkpoints)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, updated_ms = excluded.updated_ms",
                &[
                    &run.run_id, &run.agent, &run.agent_file, &run.status.as_str(), &run.trace_id,
                    &run.root_span_id, &signed(run.created_ms), &signed(run.updated_ms),
                    &signed(run.checkpoints),
                ],
            )?;
            Ok(())
        })
    }

    fn save(&self, checkpoint: &Checkpoint) -> Result<u64, StoreError> {
        let checkpoint = checkpoint.clone();
        self.call(move |db| {
            let mut saved = checkpoint.clone();
            let mut tx = db.transaction()?;
            // FOR UPDATE: two processes saving the same run take turns for its next number.
            let last: i64 = tx
                .query_opt(
                    "SELECT checkpoints FROM kettle_runs WHERE run_id = $1 FOR UPDATE",
                    &[&saved.run_id],
                )?
                .ok_or_else(|| Failure::Missing(format!("no run `{}`", saved.run_id)))?
                .try_get(0)?;
            let seq = count(last) + 1;
            saved.seq = seq;
            let body = serde_json::to_string(&saved).map_err(corrupt)?;
            let now = signed(now_ms());
            tx.execute(
                "INSERT INTO kettle_checkpoints (run_id, seq, reason, status, steps, created_ms, body) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&saved.run_id, &signed(seq), &saved.reason, &saved.status.as_str(), &i64::from(saved.steps), &now, &body],
            )?;
            tx.execute(
                "UPDATE kettle_runs SET checkpoints = $2, status = $3, updated_ms = $4 WHERE run_id = $1",
                &[&saved.run_id, &signed(seq), &saved.status.as_str(), &now],
            )?;
            tx.commit()?;
            Ok(seq)
        })
    }

    fn set_status(&self, run_id: &str, status: RunStatus) -> Result<(), StoreError> {
        let run_id = run_id.to_string();
        self.call(move |db| {
            db.execute(
                "UPDATE kettle_runs SET status = $2, updated_ms = $3 WHERE run_id = $1",
                &[&run_id, &status.as_str(), &signed(now_ms())],
            )?;
            Ok(())
        })
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let run_id = run_id.to_string();
        self.call(move |db| {
            let row = db.query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM kettle_runs WHERE run_id = $1"),
                &[&run_id],
            )?;
            Ok(row.as_ref().map(run_of).transpose()?)
        })
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.call(|db| {
            let rows = db.query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM kettle_runs ORDER BY created_ms DESC, run_id DESC"
                ),
                &[],
            )?;
            Ok(rows.iter().map(run_of).collect::<Result<_, _>>()?)
        })
    }

    fn history(&self, run_id: &str) -> Result<Vec<CheckpointSummary>, StoreError> {
        let run_id = run_id.to_string();
        self.call(move |db| {
            let rows = db.query(
                "SELECT seq, reason, status, steps, created_ms FROM kettle_checkpoints WHERE run_id = $1 ORDER BY seq",
                &[&run_id],
            )?;
            rows.iter()
                .map(|row| {
                    Ok(CheckpointSummary {
                        seq: count(row.try_get(0)?),
                        reason: row.try_get(1)?,
                        status: status_of(row.try_get(2)?),
                        steps: u32::try_from(row.try_get::<_, i64>(3)?).map_err(corrupt)?,
                        created_ms: count(row.try_get(4)?),
                    })
                })
                .collect()
        })
    }

    fn checkpoint(&self, run_id: &str, seq: Option<u64>) -> Result<Option<Checkpoint>, StoreError> {
        let run_id = run_id.to_string();
        self.call(move |db| {
            let row = match seq {
                Some(seq) => db.query_opt(
                    "SELECT body FROM kettle_checkpoints WHERE run_id = $1 AND seq = $2",
                    &[&run_id, &signed(seq)],
                )?,
                None => db.query_opt(
                    "SELECT body FROM kettle_checkpoints WHERE run_id = $1 ORDER BY seq DESC LIMIT 1",
                    &[&run_id],
                )?,
            };
            row.map(|row| {
                let body: &str = row.try_get(0)?;
                serde_json::from_str(body).map_err(corrupt)
            })
            .transpose()
        })
    }

    fn record_call(
        &self,
        run_id: &str,
        exec: &str,
        ordinal: u32,
        entry: &TapeEntry,
    ) -> Result<(), StoreError> {
        let line = crate::redact::string(serde_json::to_string(entry).map_err(|e| {
            StoreError::Corrupt {
                at: self.location(),
                message: e.to_string(),
            }
        })?);
        let (run_id, exec) = (run_id.to_string(), exec.to_string());
        self.call(move |db| {
            db.execute(
                "INSERT INTO kettle_llm_calls (run_id, exec, ordinal, entry) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (run_id, exec, ordinal) DO UPDATE SET entry = excluded.entry",
                &[&run_id, &exec, &i64::from(ordinal), &line],
            )?;
            Ok(())
        })
    }

    fn calls(&self, run_id: &str, exec: &str) -> Result<Vec<TapeEntry>, StoreError> {
        let (run_id, exec) = (run_id.to_string(), exec.to_string());
        self.call(move |db| {
            let rows = db.query(
                "SELECT entry FROM kettle_llm_calls WHERE run_id = $1 AND exec = $2 ORDER BY ordinal",
                &[&run_id, &exec],
            )?;
            rows.iter()
                .map(|row| {
                    let line: &str = row.try_get(0)?;
                    serde_json::from_str(line).map_err(corrupt)
                })
                .collect()
        })
    }
}
