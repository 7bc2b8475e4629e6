//! Components through the JetStream object store: whoever has an agent built publishes its
//! components, each an object named by its sha256, and the agent's list of them
//! (`agents/<name>.json`: source key → sha256); a worker then runs exactly those components.
//! One it lacks (no such file on its machine, a different file, a folder it would have to
//! build, an interpreter) is taken from its disk cache, or fetched by sha256, its digest
//! checked, and cached; the compile cache does the rest.

use crate::WorkerError;
use crate::jet::{Jet, nats_error};
use crate::names::COMPONENTS_BUCKET;
use async_nats::jetstream::object_store::{self, GetErrorKind, InfoErrorKind, ObjectStore};
use kettle::engine::{Agent, ProvidedComponents};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;

const MANIFEST_FORMAT: u32 = 1;

/// An agent's components as published: what a worker must run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentList {
    pub format: u32,
    pub agent: String,
    /// The `kettle` that published them.
    pub kettle: String,
    pub components: Vec<ComponentEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentEntry {
    /// Where the agent takes it from (`wasm:nodes/a.wasm`, `folder:nodes/b`,
    /// `interpreter:python`), as `kettle::engine::source_key` says it.
    pub source: String,
    pub sha256: String,
    pub bytes: u64,
}

/// What publishing one agent did.
#[derive(Debug, Clone)]
pub struct Published {
    pub agent: String,
    pub components: Vec<ComponentEntry>,
    /// How many components were not in the bucket yet.
    pub uploaded: usize,
}

/// A component a worker fetched from the bucket (rather than finding it on disk).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub agent: String,
    pub source: String,
    pub sha256: String,
    pub bytes: u64,
    /// How long fetching and checking it took.
    pub took: std::time::Duration,
}

fn manifest_name(agent: &str) -> String {
    format!("agents/{agent}.json")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The components bucket, created if missing.
pub async fn bucket(jet: &Jet, replicas: usize) -> Result<ObjectStore, WorkerError> {
    if let Ok(store) = jet.js.get_object_store(COMPONENTS_BUCKET).await {
        return Ok(store);
    }
    jet.js
        .create_object_store(object_store::Config {
            bucket: COMPONENTS_BUCKET.into(),
            description: Some("Kettle components by sha256, and each agent's list of them".into()),
            storage: async_nats::jetstream::stream::StorageType::File,
            num_replicas: replicas.max(1),
            ..Default::default()
        })
        .await
        .map_err(|e| nats_error(&jet.url, format!("the bucket {COMPONENTS_BUCKET}: {e}")))
}

/// Uploads the components of a loaded agent that the bucket lacks, then its list (replacing
/// the one published before: workers started from now on run these).
pub async fn publish_agent(
    jet: &Jet,
    store: &ObjectStore,
    agent: &Agent,
) -> Result<Published, WorkerError> {
    let mut components = Vec::new();
    let mut uploaded = 0;
    for (source, file) in agent.component_files() {
        let bytes = std::fs::read(file).map_err(|e| WorkerError::Agent {
            path: file.clone(),
            message: format!("cannot read the component of {source}: {e}"),
        })?;
        let sha256 = sha256_hex(&bytes);
        match store.info(&sha256).await {
            Ok(info) if !info.deleted => {}
            Err(e) if e.kind() != InfoErrorKind::NotFound => {
                return Err(nats_error(
                    &jet.url,
                    format!("looking for component {sha256}: {e}"),
                ));
            }
            _ => {
                store
                    .put(sha256.as_str(), &mut bytes.as_slice())
                    .await
                    .map_err(|e| {
                        nats_error(&jet.url, format!("uploading component {sha256}: {e}"))
                    })?;
                uploaded += 1;
            }
        }
        components.push(ComponentEntry {
            source: source.clone(),
            sha256,
            bytes: bytes.len() as u64,
        });
    }
    let list = ComponentList {
        format: MANIFEST_FORMAT,
        agent: agent.name.clone(),
        kettle: env!("CARGO_PKG_VERSION").to_string(),
        components: components.clone(),
    };
    let text = serde_json::to_vec_pretty(&list).map_err(|e| nats_error(&jet.url, e))?;
    store
        .put(manifest_name(&agent.name).as_str(), &mut text.as_slice())
        .await
        .map_err(|e| {
            nats_error(
                &jet.url,
                format!("publishing the component list of {}: {e}", agent.name),
            )
        })?;
    Ok(Published {
        agent: agent.name.clone(),
        components,
        uploaded,
    })
}

/// The components of the agent file `file` to take from the bucket rather than from disk:
/// none when its list was never published; else every listed component but a `.wasm` file
/// this machine has with the same sha256. Each is taken from `cache_dir/fetched`, or
/// fetched, its digest checked, and cached there.
pub async fn provide(
    jet: &Jet,
    store: &ObjectStore,
    file: &Path,
    cache_dir: &Path,
) -> Result<(ProvidedComponents, Vec<Fetched>), WorkerError> {
    let mut provided = ProvidedComponents::default();
    let mut fetched = Vec::new();
    // An agent file that does not parse is left to the loader, which says why.
    let Ok(loaded) = kettle::spec::parse_file(file) else {
        return Ok((provided, fetched));
    };
    let agent = loaded.spec.name.clone();
    let Some(list) = component_list(jet, store, &agent).await? else {
        return Ok((provided, fetched));
    };
    let folder = file.parent().unwrap_or(Path::new(""));
    let cache = cache_dir.join("fetched");
    for entry in list.components {
        let bad_digest = || entry.sha256.len() != 64 || hex::decode(&entry.sha256).is_err();
        if bad_digest() {
            return Err(nats_error(
                &jet.url,
                format!(
                    "the component list of agent {agent} in {COMPONENTS_BUCKET} names `{}` by `{}`, which is not a sha256; publish the agent again with `kettle publish`",
                    entry.source,
                    kettle::redact::controls(&entry.sha256)
                ),
            ));
        }
        if let Some(relative) = entry.source.strip_prefix("wasm:")
            && std::fs::read(folder.join(relative)).is_ok_and(|b| sha256_hex(&b) == entry.sha256)
        {
            continue;
        }
        let cached = cache.join(format!("{}.wasm", entry.sha256));
        if !std::fs::read(&cached).is_ok_and(|b| sha256_hex(&b) == entry.sha256) {
            let started = std::time::Instant::now();
            let bytes = fetch(jet, store, &agent, &entry).await?;
            let took = started.elapsed();
            write_atomically(&cached, &bytes).map_err(|e| WorkerError::Agent {
                path: cached.clone(),
                message: format!("cannot cache component {}: {e}", entry.sha256),
            })?;
            fetched.push(Fetched {
                agent: agent.clone(),
                source: entry.source.clone(),
                sha256: entry.sha256.clone(),
                bytes: bytes.len() as u64,
                took,
            });
        }
        provided.by_key.insert(entry.source, cached);
    }
    Ok((provided, fetched))
}

/// The published list of `agent`'s components, if any.
async fn component_list(
    jet: &Jet,
    store: &ObjectStore,
    agent: &str,
) -> Result<Option<ComponentList>, WorkerError> {
    let bytes = match read_object(store, &manifest_name(agent)).await {
        Ok(bytes) => bytes,
        Err(Missing::NotFound) => return Ok(None),
        Err(Missing::Failed(e)) => {
            return Err(nats_error(
                &jet.url,
                format!("reading the component list of agent {agent}: {e}"),
            ));
        }
    };
    let list: ComponentList = serde_json::from_slice(&bytes).map_err(|e| {
        nats_error(
            &jet.url,
            format!("the component list of agent {agent} in {COMPONENTS_BUCKET} is unreadable ({e}); publish the agent again with `kettle publish`"),
        )
    })?;
    if list.format != MANIFEST_FORMAT {
        return Err(nats_error(
            &jet.url,
            format!(
                "the component list of agent {agent} has format {}, this kettle reads {MANIFEST_FORMAT}; publish it with this kettle (`kettle publish`)",
                list.format
            ),
        ));
    }
    Ok(Some(list))
}

/// Fetches one component and checks that its bytes are the ones its name promises.
async fn fetch(
    jet: &Jet,
    store: &ObjectStore,
    agent: &str,
    entry: &ComponentEntry,
) -> Result<Vec<u8>, WorkerError> {
    let bytes = match read_object(store, &entry.sha256).await {
        Ok(bytes) => bytes,
        Err(Missing::NotFound) => {
            return Err(nats_error(
                &jet.url,
                format!(
                    "agent {agent}: component {} ({}) is listed but not in {COMPONENTS_BUCKET}; publish the agent again with `kettle publish`",
                    entry.sha256, entry.source
                ),
            ));
        }
        Err(Missing::Failed(e)) => {
            return Err(nats_error(
                &jet.url,
                format!("agent {agent}: fetching component {}: {e}", entry.sha256),
            ));
        }
    };
    let actual = sha256_hex(&bytes);
    if actual != entry.sha256 {
        return Err(nats_error(
            &jet.url,
            format!(
                "agent {agent}: refusing component {} ({}) from {COMPONENTS_BUCKET}: its bytes hash to sha256 {actual}, not to the sha256 it is stored under; the bucket's copy was altered or corrupted: publish the agent again with `kettle publish`",
                entry.sha256, entry.source
            ),
        ));
    }
    Ok(bytes)
}

enum Missing {
    NotFound,
    Failed(String),
}

async fn read_object(store: &ObjectStore, name: &str) -> Result<Vec<u8>, Missing> {
    let mut object = store.get(name).await.map_err(|e| match e.kind() {
        GetErrorKind::NotFound => Missing::NotFound,
        _ => Missing::Failed(e.to_string()),
    })?;
    let mut bytes = Vec::new();
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| Missing::Failed(e.to_string()))?;
    Ok(bytes)
}

/// Written aside and renamed, so that no reader sees half a component.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial: PathBuf = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

/// `kettle publish`: loads each agent file (building and compiling its components as
/// `kettle run` does) and publishes its components.
pub async fn publish_files(
    jet: &Jet,
    files: &[PathBuf],
    cache_dir: &Path,
    replicas: usize,
) -> Result<Vec<Published>, WorkerError> {
    use kettle::sandbox::{CompileCache, Sandbox, SandboxConfig};
    let store = bucket(jet, replicas).await?;
    let sandbox =
        Sandbox::new(&SandboxConfig::default(), CompileCache::new(cache_dir)).map_err(|e| {
            WorkerError::Agent {
                path: PathBuf::new(),
                message: format!("the sandbox cannot start: {e}"),
            }
        })?;
    let mut published = Vec::new();
    for file in files {
        let agent = kettle::engine::load_agent(file, &sandbox, cache_dir, &|_| {})
            .await
            .map_err(|e| WorkerError::Agent {
                path: file.clone(),
                message: e.to_string(),
            })?;
        if let Some(problem) = crate::names::token_problem("the agent's name", &agent.name) {
            return Err(WorkerError::Agent {
                path: file.clone(),
                message: format!("{problem} (change its `name:`)"),
            });
        }
        published.push(publish_agent(jet, &store, &agent).await?);
    }
    Ok(published)
}
