//! The agents a server runs: found in the paths given, validated, their components compiled,
//! each with its own telemetry (its `settings.tracing`), before the first request.

use crate::ServeConfig;
use kettle::checkpoint::{CheckpointStore, open_store};
use kettle::engine::{Agent, Runtime, load_agent, load_checked};
use kettle::graph::{GraphFormat, render};
use kettle::sandbox::{CompileCache, Sandbox, SandboxConfig};
use kettle::telemetry::{Telemetry, TraceOverrides, process_env, resolve};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An agent that cannot be served; start-up stops on it.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no agent: expected an agent.yaml, or *.yaml agent files", .0.display())]
    EmptyFolder(PathBuf),
    #[error("cannot load the agent {}:\n{message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error(
        "two agents are named `{name}` ({} and {}); names must be unique: change one's `name:`", first.display(), second.display()
    )]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "no agent given: name agent files or folders, such as `kettle serve examples/hello/agent.yaml`"
    )]
    NoAgents,
    #[error("the sandbox cannot start: {0}")]
    Sandbox(String),
    #[error("{}: the checkpoint store: {message}", path.display())]
    Store { path: PathBuf, message: String },
}

/// One served agent.
pub struct Served {
    pub name: String,
    pub description: Option<String>,
    pub mermaid: String,
    /// The graph as nodes, edges and groups, for the page to draw.
    pub graph: serde_json::Value,
    pub agent: Agent,
    pub runtime: Runtime,
    /// Where the agent's runs are checkpointed, when they are durable (`--store`,
    /// `settings.checkpoint`, or interrupts, which need a checkpoint to resume from).
    pub store: Option<Arc<dyn CheckpointStore>>,
    /// The agent file, absolute, as durable runs record it.
    pub agent_file: String,
    telemetry: Arc<Telemetry>,
}

/// Every served agent, by name.
pub struct Catalog {
    pub agents: BTreeMap<String, Arc<Served>>,
    /// The one sandbox (engine and instance pool) every agent runs in.
    pub sandbox: Arc<Sandbox>,
}

impl Catalog {
    pub async fn load(config: &ServeConfig) -> Result<Self, CatalogError> {
        let files = agent_files(&config.agents)?;
        let sandbox = Sandbox::new(
            &SandboxConfig::default(),
            CompileCache::new(&config.cache_dir),
        )
        .map(Arc::new)
        .map_err(|e| CatalogError::Sandbox(e.to_string()))?;
        let mut agents: BTreeMap<String, Arc<Served>> = BTreeMap::new();
        for path in files {
            let served = load_one(&path, &sandbox, config).await?;
            if let Some(first) = agents.get(&served.name) {
                return Err(CatalogError::DuplicateName {
                    name: served.name.clone(),
                    first: first.agent.path.clone(),
                    second: path,
                });
            }
            agents.insert(served.name.clone(), Arc::new(served));
        }
        Ok(Self { agents, sandbox })
    }

    /// The served agent a durable run belongs to, with its record in that agent's store.
    pub fn durable_run(
        &self,
        run_id: &str,
    ) -> Option<(Arc<Served>, kettle::checkpoint::RunRecord)> {
        self.agents.values().find_map(|served| {
            let store = served.store.as_ref()?;
            let record = store.run(run_id).ok().flatten()?;
            (record.agent_file == served.agent_file || record.agent == served.name)
                .then(|| (served.clone(), record))
        })
    }

    /// Durable runs stopped at an interrupt, from every agent's store, newest first.
    pub fn interrupted_runs(&self) -> Vec<kettle::checkpoint::RunRecord> {
        let mut seen = std::collections::BTreeSet::new();
        let mut runs: Vec<_> = self
            .agents
            .values()
            .filter_map(|served| served.store.as_ref().and_then(|s| s.runs().ok()))
            .flatten()
            .filter(|r| r.status == kettle::checkpoint::RunStatus::Interrupted)
            .filter(|r| seen.insert(r.run_id.clone()))
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.updated_ms));
        runs
    }

    /// Flushes and stops every agent's exporters.
    pub async fn shutdown(&self) {
        for served in self.agents.values() {
            let telemetry = served.telemetry.clone();
            if let Ok(warnings) = tokio::task::spawn_blocking(move || telemetry.shutdown()).await {
                for warning in warnings {
                    tracing::warn!(agent = %served.name, "{}", kettle::redact::text(&warning));
                }
            }
        }
    }
}

async fn load_one(
    path: &Path,
    sandbox: &Arc<Sandbox>,
    config: &ServeConfig,
) -> Result<Served, CatalogError> {
    let invalid = |message: String| CatalogError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let (loaded, graph) = load_checked(path).map_err(|e| invalid(e.to_string()))?;
    let mermaid = render(&graph, &loaded.spec.name, GraphFormat::Mermaid);
    let graph_json = serde_json::from_str(&render(&graph, &loaded.spec.name, GraphFormat::Json))
        .unwrap_or_default();
    let description = loaded.spec.description.clone();
    let quiet = |_| {};
    let agent = load_agent(path, sandbox, &config.cache_dir, &quiet)
        .await
        .map_err(|e| invalid(e.to_string()))?;
    let overrides = TraceOverrides {
        dir: config.trace_dir.clone(),
        ..TraceOverrides::default()
    };
    let settings = agent.trace_settings();
    let telemetry = resolve(&overrides, settings, &process_env)
        .map_err(|e| invalid(e.to_string()))
        .and_then(|c| Telemetry::new(&c).map_err(|e| invalid(e.to_string())))
        .map(Arc::new)?;
    let durable =
        config.store.is_some() || agent.checkpoint.is_some() || !agent.interrupts.is_empty();
    let store = if durable {
        let settings = agent.checkpoint.clone().unwrap_or_default();
        let kind = settings.store.as_deref().unwrap_or("sqlite");
        let url = config.store.as_deref().or(settings.url.as_deref());
        Some(open_store(kind, url).map_err(|e| CatalogError::Store {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?)
    } else {
        None
    };
    let agent_file = std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    Ok(Served {
        store,
        agent_file,
        name: agent.name.clone(),
        description,
        mermaid,
        graph: graph_json,
        runtime: Runtime::new(sandbox.clone(), telemetry.clone()),
        agent,
        telemetry,
    })
}

/// The agent files named: files as given; a folder's `agent.yaml`, else its `*.yaml`/`*.yml`.
fn agent_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CatalogError> {
    if paths.is_empty() {
        return Err(CatalogError::NoAgents);
    }
    let mut files = Vec::new();
    for path in paths {
        let unreadable = |source| CatalogError::Unreadable {
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let single = path.join("agent.yaml");
        if single.is_file() {
            files.push(single);
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(unreadable)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
            })
            .collect();
        if found.is_empty() {
            return Err(CatalogError::EmptyFolder(path.clone()));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}
