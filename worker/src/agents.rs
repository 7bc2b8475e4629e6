//! The agents a worker serves: loaded and compiled once at start, each with its telemetry, the
//! components their publisher listed taken from the components bucket.

use crate::WorkerError;
use crate::components::{self, Fetched};
use crate::jet::Jet;
use crate::names::token_problem;
use async_nats::jetstream::object_store::ObjectStore;
use kettle::engine::{Agent, Runtime, load_agent_with};
use kettle::sandbox::{CompileCache, Sandbox, SandboxConfig};
use kettle::telemetry::{Telemetry, TraceOverrides, process_env, resolve};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One agent a worker runs.
pub struct Served {
    pub agent: Agent,
    pub runtime: Runtime,
    /// The agent file, absolute, as durable runs record it.
    pub agent_file: String,
    pub telemetry: Arc<Telemetry>,
}

/// The agents, by name, and the components fetched for them.
pub type Loaded = (BTreeMap<String, Arc<Served>>, Vec<Fetched>);

/// Loads every agent file, by name; names must be unique and usable as subject tokens.
pub async fn load(
    jet: &Jet,
    bucket: &ObjectStore,
    files: &[PathBuf],
    cache_dir: &Path,
    trace_dir: Option<&Path>,
) -> Result<Loaded, WorkerError> {
    if files.is_empty() {
        return Err(WorkerError::Agent {
            path: PathBuf::new(),
            message: "no agent given: name the agent files this worker runs, such as `kettle worker --nats nats://127.0.0.1:4222 agent.yaml`".into(),
        });
    }
    let sandbox = Sandbox::new(&SandboxConfig::default(), CompileCache::new(cache_dir))
        .map(Arc::new)
        .map_err(|e| WorkerError::Agent {
            path: PathBuf::new(),
            message: format!("the sandbox cannot start: {e}"),
        })?;
    let mut agents = BTreeMap::new();
    let mut fetched = Vec::new();
    for path in files {
        let invalid = |message: String| WorkerError::Agent {
            path: path.clone(),
            message,
        };
        let (provided, got) = components::provide(jet, bucket, path, cache_dir).await?;
        fetched.extend(got);
        let agent = load_agent_with(path, &sandbox, cache_dir, &|_| {}, &provided)
            .await
            .map_err(|e| invalid(e.to_string()))?;
        if let Some(problem) = token_problem("the agent's name", &agent.name) {
            return Err(invalid(format!("{problem} (change its `name:`)")));
        }
        let overrides = TraceOverrides {
            dir: trace_dir.map(Path::to_path_buf),
            ..TraceOverrides::default()
        };
        let settings = agent.trace_settings();
        let telemetry = resolve(&overrides, settings, &process_env)
            .map_err(|e| invalid(e.to_string()))
            .and_then(|c| Telemetry::new(&c).map_err(|e| invalid(e.to_string())))
            .map(Arc::new)?;
        let agent_file = std::fs::canonicalize(path)
            .unwrap_or_else(|_| path.clone())
            .display()
            .to_string();
        if agents.contains_key(&agent.name) {
            return Err(invalid(format!(
                "two agents are named `{}`; names must be unique: change one's `name:`",
                agent.name
            )));
        }
        agents.insert(
            agent.name.clone(),
            Arc::new(Served {
                runtime: Runtime::new(sandbox.clone(), telemetry.clone()),
                agent,
                agent_file,
                telemetry,
            }),
        );
    }
    Ok((agents, fetched))
}
