//! Loading an agent: spec, graph, LLM client, and every component built and prepared, before
//! the first node runs (so that a broken agent fails fast, not halfway).

use super::policy::NodePolicy;
use crate::capabilities::RunBudget;
use crate::graph::{ComponentSource, Graph};
use crate::llm::LlmClient;
use crate::sandbox::{LoadOutcome, PreparedComponent, Sandbox, SandboxError};
use crate::spec::{
    CheckpointSettings, LangfuseSettings, LimitsSpec, LoadedSpec, OpikSettings, RunLimits,
    SpecError, SpecErrors, TracingSettings,
};
use crate::telemetry::{DEFAULT_MAX_SPANS_PER_RUN, TraceSettings};
use kettle_build::{BuildError, BuildOptions, Language, NodeReady, build_interpreter, ready_node};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A loaded agent, ready to run any number of times.
pub struct Agent {
    pub name: String,
    /// Per node name: limits, grants, failure policy.
    pub policies: FxHashMap<String, NodePolicy>,
    /// `settings.limits`: the default limits of every node.
    pub default_limits: Option<LimitsSpec>,
    /// `settings.budget`.
    pub budget: RunBudget,
    /// `settings.budget.max_spans`, or its default.
    pub max_spans: u64,
    pub path: PathBuf,
    pub graph: Graph,
    pub variables: Map<String, Value>,
    pub max_steps: Option<u32>,
    /// TEA's `initial_state:`: the state a run starts from; the input's keys replace these.
    pub initial_state: Map<String, Value>,
    /// `settings.parallel.max_workers`: branches of one fan-out running at once.
    pub max_parallel: Option<u32>,
    pub tracing: Option<TracingSettings>,
    pub opik: Option<OpikSettings>,
    pub langfuse: Option<LangfuseSettings>,
    pub llm: Arc<LlmClient>,
    /// What TEA allows but Kettle warns about (`kettle validate` prints the same), such as a
    /// TEA `settings:` section Kettle ignores.
    pub warnings: Vec<crate::spec::SpecError>,
    /// `settings.checkpoint`: the agent's runs are durable.
    pub checkpoint: Option<CheckpointSettings>,
    /// The nodes the run stops before and after (`settings.interrupt_*`, node
    /// `interrupt_*: true`, and TEA's `config.interrupt_*`).
    pub interrupts: Interrupts,
    components: FxHashMap<usize, Arc<PreparedComponent>>,
    /// Per component source key (`source_key`): the `.wasm` file it was prepared from.
    component_files: Vec<(String, PathBuf)>,
    /// Per component id run from source (a Python folder in the Python interpreter): the
    /// folder's source as the interpreter's config holds it (`{"module", "files"}`, JSON).
    sources: HashMap<usize, Arc<str>>,
}

/// The nodes a run stops at, to be resumed with `kettle resume`.
#[derive(Debug, Clone, Default)]
pub struct Interrupts {
    pub before: BTreeSet<String>,
    pub after: BTreeSet<String>,
}

impl Interrupts {
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }

    /// Gathered from the spec; a name that is not a node is an error at its place.
    fn from_spec(loaded: &LoadedSpec) -> Result<Self, Vec<SpecError>> {
        let spec = &loaded.spec;
        let mut interrupts = Self::default();
        let mut errors = Vec::new();
        let config_list = |key: &str| -> Vec<String> {
            spec.config
                .as_ref()
                .and_then(|c| c.get(key))
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let lists = [
            (
                "settings.interrupt_before",
                spec.settings.interrupt_before.clone(),
                true,
            ),
            (
                "config.interrupt_before",
                config_list("interrupt_before"),
                true,
            ),
            (
                "settings.interrupt_after",
                spec.settings.interrupt_after.clone(),
                false,
            ),
            (
                "config.interrupt_after",
                config_list("interrupt_after"),
                false,
            ),
        ];
        for (at, names, before) in lists {
            for name in names {
                if !spec.nodes.iter().any(|n| n.name == name) {
                    errors.push(loaded.error_at(
                        at,
                        format!("{at} names `{name}`, which is not a node of this agent"),
                        Some("list node names from `nodes:`".into()),
                    ));
                } else if before {
                    interrupts.before.insert(name);
                } else {
                    interrupts.after.insert(name);
                }
            }
        }
        for node in &spec.nodes {
            if node.interrupt_before {
                interrupts.before.insert(node.name.clone());
            }
            if node.interrupt_after {
                interrupts.after.insert(node.name.clone());
            }
        }
        if errors.is_empty() {
            Ok(interrupts)
        } else {
            Err(errors)
        }
    }
}

impl Agent {
    /// What the agent file says of its trace (`settings.tracing`, `opik`, `langfuse`).
    pub fn trace_settings(&self) -> TraceSettings<'_> {
        TraceSettings {
            tracing: self.tracing.as_ref(),
            opik: self.opik.as_ref(),
            langfuse: self.langfuse.as_ref(),
        }
    }

    /// The policy of node `node` (the default policy for a name the agent does not have).
    pub fn policy(&self, node: &str) -> &NodePolicy {
        static DEFAULT: std::sync::LazyLock<NodePolicy> =
            std::sync::LazyLock::new(NodePolicy::default);
        self.policies.get(node).unwrap_or(&DEFAULT)
    }

    /// The prepared component with id `component` (see `Graph::component_sources`).
    pub(crate) fn component(&self, component: usize) -> Option<&Arc<PreparedComponent>> {
        self.components.get(&component)
    }

    /// Each component's source key (`engine::source_key`: `wasm:…`, `folder:…`,
    /// `interpreter:…`) with the `.wasm` file it was prepared from, in graph order; a Python
    /// folder run from source is listed as its interpreter.
    pub fn component_files(&self) -> &[(String, PathBuf)] {
        &self.component_files
    }

    /// The source of component `component` when it is a node folder run from source by an
    /// interpreter (its component is then the interpreter).
    pub(crate) fn source(&self, component: usize) -> Option<&Arc<str>> {
        self.sources.get(&component)
    }
}

/// Progress while loading, one event per component.
#[derive(Debug, Clone)]
pub enum ComponentEvent {
    /// A line a person waits on (a build, a toolchain install).
    Progress(String),
    /// A node folder was built.
    Built {
        node: String,
        language: Language,
        took: Duration,
    },
    /// A component was compiled, or loaded from the compile cache.
    Loaded { node: String, outcome: LoadOutcome },
    /// A node folder runs from source in its language's interpreter: nothing was built.
    FromSource { node: String, language: Language },
}

#[derive(Debug, thiserror::Error)]
pub enum AgentLoadError {
    #[error("{0}")]
    Spec(#[from] SpecErrors),
    #[error("node `{node}`: {source}")]
    Build { node: String, source: BuildError },
    #[error("node `{node}`: {source}")]
    Sandbox { node: String, source: SandboxError },
    #[error("node `{node}`: Kettle has no interpreter for {language} inline code")]
    NoInterpreter { node: String, language: String },
    #[error("{0}")]
    Precompiled(#[from] crate::sandbox::PrecompiledError),
    #[error("no precompiled components in {} (it has no manifest.json)\n  hint: precompile them: `{command}`", dir.display())]
    NoManifest { dir: PathBuf, command: String },
    #[error(
        "node `{node}`: its component ({component}) is not precompiled, and {reason}\n  hint: precompile the agent's components (inline-code interpreters included): `{command}`"
    )]
    NotPrecompiled {
        node: String,
        component: String,
        reason: &'static str,
        command: String,
    },
    #[error(
        "node `{node}`: its component ({component}) changed since it was precompiled\n  hint: precompile the agent's components again: `{command}`"
    )]
    Stale {
        node: String,
        component: String,
        command: String,
    },
}

/// The options of the graph's `llm.*` actions (nodes, steps, loop bodies, parallel items)
/// that their provider cannot take, as (where, why).
fn refused_llm_options(graph: &Graph, llm: &LlmClient) -> Vec<(String, String)> {
    use crate::graph::{Action, NodeKind, Step};
    let mut refused = Vec::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        let steps: &[Step] = match &node.kind {
            NodeKind::Action(Action::LlmCall { with, .. }) => {
                for (key, why) in llm.refused_options(with) {
                    refused.push((format!("nodes[{i}].with.{key}"), why));
                }
                continue;
            }
            NodeKind::Action(_) => continue,
            NodeKind::Steps(steps) => steps,
            NodeKind::WhileLoop { body, .. } => body,
            NodeKind::DynamicParallel(parallel) => &parallel.body,
        };
        for step in steps {
            if let Action::LlmCall { with, .. } = &step.action {
                for (_, why) in llm.refused_options(with) {
                    refused.push((
                        format!("nodes[{i}]"),
                        format!("step `{}`: {why}", step.name),
                    ));
                }
            }
        }
    }
    refused
}

/// Loads the agent at `path`, building and preparing its components.
pub async fn load_agent(
    path: &Path,
    sandbox: &Sandbox,
    cache_dir: &Path,
    events: &(dyn Fn(ComponentEvent) + Sync),
) -> Result<Agent, AgentLoadError> {
    read_agent(path, cache_dir)?
        .load(sandbox, cache_dir, events)
        .await
}

/// Components given from elsewhere, by source key (`engine::source_key`): each replaces the
/// `.wasm` file, node folder or interpreter the agent names, which then need not be on disk
/// nor built. Kettle's workers fill it with components fetched by their sha256.
#[derive(Debug, Clone, Default)]
pub struct ProvidedComponents {
    pub by_key: HashMap<String, PathBuf>,
}

/// [`load_agent`], with some components given from elsewhere.
pub async fn load_agent_with(
    path: &Path,
    sandbox: &Sandbox,
    cache_dir: &Path,
    events: &(dyn Fn(ComponentEvent) + Sync),
    provided: &ProvidedComponents,
) -> Result<Agent, AgentLoadError> {
    let read = read(path, cache_dir, provided)?;
    build(read, sandbox, cache_dir, events, true, provided).await
}

/// Loads the agent at `path` for a run whose LLM calls are all answered from a recording
/// (`LlmClient::replay_from`): the providers' key variables need not be set.
pub async fn load_agent_for_replay(
    path: &Path,
    sandbox: &Sandbox,
    cache_dir: &Path,
    events: &(dyn Fn(ComponentEvent) + Sync),
) -> Result<Agent, AgentLoadError> {
    read_agent(path, cache_dir)?
        .load_for_replay(sandbox, cache_dir, events)
        .await
}

/// An agent file read, typed, checked and compiled to its graph, with nothing of it built yet
/// (no component, no provider): what `kettle run` looks at before it starts its async runtime,
/// whose threads only an agent with branches has a use for.
#[derive(Debug)]
pub struct ReadAgent {
    path: PathBuf,
    loaded: LoadedSpec,
    graph: Graph,
    warnings: Vec<SpecError>,
}

impl ReadAgent {
    /// Whether a run of this agent may run nodes at once (see [`Graph::runs_branches`]).
    pub fn runs_branches(&self) -> bool {
        self.graph.runs_branches()
    }

    /// [`load_agent`] of the agent read.
    pub async fn load(
        self,
        sandbox: &Sandbox,
        cache_dir: &Path,
        events: &(dyn Fn(ComponentEvent) + Sync),
    ) -> Result<Agent, AgentLoadError> {
        build(
            self,
            sandbox,
            cache_dir,
            events,
            true,
            &ProvidedComponents::default(),
        )
        .await
    }

    /// [`load_agent_for_replay`] of the agent read.
    pub async fn load_for_replay(
        self,
        sandbox: &Sandbox,
        cache_dir: &Path,
        events: &(dyn Fn(ComponentEvent) + Sync),
    ) -> Result<Agent, AgentLoadError> {
        build(
            self,
            sandbox,
            cache_dir,
            events,
            false,
            &ProvidedComponents::default(),
        )
        .await
    }
}

/// The first step of [`load_agent`]: reads the agent at `path` (its parsed tree kept under
/// `cache_dir`), and reports its structural, file and template errors together, in file order.
pub fn read_agent(path: &Path, cache_dir: &Path) -> Result<ReadAgent, AgentLoadError> {
    read(path, cache_dir, &ProvidedComponents::default())
}

fn read(
    path: &Path,
    cache_dir: &Path,
    provided: &ProvidedComponents,
) -> Result<ReadAgent, AgentLoadError> {
    use super::precompile::source_key;
    let is_provided = |file: &Path| {
        [
            ComponentSource::Wasm(file.to_path_buf()),
            ComponentSource::Folder(file.to_path_buf()),
        ]
        .iter()
        .any(|source| provided.by_key.contains_key(&source_key(path, source)))
    };
    let (loaded, graph, warnings) =
        super::component_check::load_providing(path, Some(cache_dir), &is_provided)
            .map_err(|(errors, _)| errors)?;
    Ok(ReadAgent {
        path: path.to_path_buf(),
        loaded,
        graph,
        warnings,
    })
}

/// The second step of [`load_agent`]: providers, policies and components of the agent read.
async fn build(
    read: ReadAgent,
    sandbox: &Sandbox,
    cache_dir: &Path,
    events: &(dyn Fn(ComponentEvent) + Sync),
    keys_required: bool,
    provided: &ProvidedComponents,
) -> Result<Agent, AgentLoadError> {
    use super::precompile::source_key;
    let ReadAgent {
        path,
        loaded,
        graph,
        warnings,
    } = read;
    let path = path.as_path();
    let mut llm = LlmClient::from_settings(loaded.spec.settings.llm.as_ref())
        .map_err(|e| SpecErrors(vec![loaded.error_at(&e.at, e.message, None)]))?;
    llm.add_shell_providers(
        &loaded.spec.settings.shell_providers(),
        &crate::spec::secret_variables(&loaded.spec),
    )
    .map_err(|(name, message)| {
        let under_llm = loaded
            .spec
            .settings
            .llm
            .as_ref()
            .is_some_and(|l| l.shell_providers.contains_key(&name));
        let at = if under_llm {
            format!("settings.llm.shell_providers.{name}")
        } else {
            format!("settings.shell_providers.{name}")
        };
        SpecErrors(vec![loaded.error_at(
            &at,
            format!("shell provider `{name}`: {message}"),
            None,
        )])
    })?;
    // Options a provider cannot take are refused now, not dropped at the first call.
    let refused = refused_llm_options(&graph, &llm)
        .into_iter()
        .map(|(at, why)| loaded.error_at(&at, why, None))
        .collect::<Vec<_>>();
    if !refused.is_empty() {
        return Err(SpecErrors(refused).into());
    }
    if keys_required && !llm.missing_keys().is_empty() {
        let errors = llm.missing_keys().iter();
        return Err(SpecErrors(
            errors
                .map(|e| loaded.error_at(&e.at, e.message.clone(), None))
                .collect(),
        )
        .into());
    }
    let interrupts = Interrupts::from_spec(&loaded).map_err(SpecErrors)?;

    let policies: FxHashMap<String, NodePolicy> = loaded
        .spec
        .nodes
        .iter()
        .filter_map(|node| Some((node.name.clone(), NodePolicy::of(&loaded, node)?)))
        .collect();
    let mut prepared: HashMap<PathBuf, Arc<PreparedComponent>> = HashMap::new();
    let mut components = FxHashMap::default();
    let mut sources = HashMap::new();
    let mut component_files: Vec<(String, PathBuf)> = Vec::new();
    let mut listed: HashSet<String> = HashSet::new();
    // Many nodes may name one component or folder: each is keyed, fingerprinted and built once
    // (`done` below).
    let mut keys: HashMap<ComponentSource, String> = HashMap::new();
    let precompiled = super::precompile::open_for(path, sandbox.precompiled())?;
    let command = super::precompile::precompile_command(path);
    // What each source came to, by whether its node grants `http` (a JavaScript folder is
    // built with or without fetch): the other nodes naming it take that at once.
    let mut done: [FxHashMap<ComponentSource, Done>; 2] = Default::default();
    for (index, node, source) in graph.components() {
        let node = node.to_string();
        let http = policies
            .get(&node)
            .is_some_and(|p| !p.grants.http.is_empty());
        if !sandbox.precompiled().only
            && let Some(done) = done[usize::from(http)].get(source)
        {
            if let Some(text) = &done.source {
                events(ComponentEvent::FromSource {
                    node,
                    language: Language::Python,
                });
                sources.insert(index, text.clone());
            }
            components.insert(index, done.component.clone());
            continue;
        }
        if sandbox.precompiled().only {
            let component = precompiled_only(
                path,
                &node,
                source,
                precompiled.as_ref(),
                sandbox,
                &mut prepared,
                &command,
                events,
            )?;
            components.insert(index, component);
            continue;
        }
        let key = keys
            .entry(source.clone())
            .or_insert_with(|| source_key(path, source))
            .clone();
        // A node folder missing here compiles as a `.wasm` path: its folder key still names it.
        let given = provided.by_key.get(&key).or_else(|| match source {
            ComponentSource::Wasm(file) => provided
                .by_key
                .get(&source_key(path, &ComponentSource::Folder(file.clone()))),
            _ => None,
        });
        let wasm = match source {
            _ if given.is_some() => given.cloned().unwrap_or_default(),
            ComponentSource::Wasm(wasm) => wasm.clone(),
            ComponentSource::Interpreter(language) => {
                interpreter_wasm(&node, language, cache_dir, events).await?
            }
            ComponentSource::Folder(dir) => {
                // A JavaScript node without an `http` grant is built without fetch, so that
                // it imports no `wasi:http` and its `fetch` fails cleanly.
                let options = BuildOptions { http };
                match ready_folder(&node, dir, &options, cache_dir, provided, events).await? {
                    FolderReady::Component(wasm) => wasm,
                    FolderReady::Source(source, interpreter) => {
                        events(ComponentEvent::FromSource {
                            node: node.clone(),
                            language: Language::Python,
                        });
                        sources.insert(index, source);
                        interpreter
                    }
                }
            }
        };
        let key = if sources.contains_key(&index) {
            "interpreter:python".to_string()
        } else {
            key
        };
        if listed.insert(key.clone()) {
            component_files.push((key, wasm.clone()));
        }
        let component = match prepared.get(&wasm) {
            Some(component) => component.clone(),
            None => {
                let component = Arc::new(
                    sandbox
                        .prepare_using(&wasm, precompiled.as_ref(), &command)
                        .map_err(|source| AgentLoadError::Sandbox {
                            node: node.clone(),
                            source,
                        })?,
                );
                let node = match source {
                    ComponentSource::Interpreter(language) => format!("{language} interpreter"),
                    _ if sources.contains_key(&index) => "python interpreter".into(),
                    _ => node.clone(),
                };
                events(ComponentEvent::Loaded {
                    node,
                    outcome: component.load.clone(),
                });
                prepared.insert(wasm, component.clone());
                component
            }
        };
        done[usize::from(http)].insert(
            source.clone(),
            Done {
                component: component.clone(),
                source: sources.get(&index).cloned(),
            },
        );
        components.insert(index, component);
    }

    let budget = RunBudget::from(RunLimits::resolve(loaded.spec.settings.budget.as_ref()));
    let max_spans = loaded
        .spec
        .settings
        .budget
        .as_ref()
        .and_then(|b| b.max_spans)
        .unwrap_or(DEFAULT_MAX_SPANS_PER_RUN);
    Ok(Agent {
        name: loaded.spec.name.clone(),
        policies,
        default_limits: loaded.spec.settings.limits.clone(),
        budget,
        max_spans,
        path: path.to_path_buf(),
        graph,
        variables: loaded.spec.variables.clone(),
        max_steps: loaded.spec.settings.max_steps,
        initial_state: loaded.spec.initial_state.clone().unwrap_or_default(),
        max_parallel: loaded
            .spec
            .settings
            .parallel
            .as_ref()
            .and_then(|p| p.max_workers),
        tracing: loaded.spec.settings.tracing.clone(),
        opik: loaded.spec.settings.opik.clone(),
        langfuse: loaded.spec.settings.langfuse.clone(),
        llm: Arc::new(llm),
        warnings,
        checkpoint: loaded.spec.settings.checkpoint.clone(),
        interrupts,
        components,
        component_files,
        sources,
    })
}

/// The precompiled component of node `node` (no build, no compile), found in the manifest by
/// where it comes from; refused, saying how to precompile it, when the manifest lacks it or
/// its `.wasm` file changed since.
#[allow(clippy::too_many_arguments)]
fn precompiled_only(
    agent: &Path,
    node: &str,
    source: &ComponentSource,
    precompiled: Option<&crate::sandbox::Precompiled>,
    sandbox: &Sandbox,
    prepared: &mut HashMap<PathBuf, Arc<PreparedComponent>>,
    command: &str,
    events: &(dyn Fn(ComponentEvent) + Sync),
) -> Result<Arc<PreparedComponent>, AgentLoadError> {
    let key = super::precompile::source_key(agent, source);
    let Some(found) = precompiled.and_then(|p| p.by_source(&key)) else {
        return Err(AgentLoadError::NotPrecompiled {
            node: node.to_string(),
            component: key,
            reason: super::precompile::only_reason(),
            command: command.to_string(),
        });
    };
    if let ComponentSource::Wasm(file) = source {
        // A .wasm file is at hand: it must be the one that was compiled.
        let bytes = std::fs::read(file).map_err(|source| AgentLoadError::Sandbox {
            node: node.to_string(),
            source: SandboxError::Read {
                path: file.clone(),
                source,
            },
        })?;
        if crate::sandbox::component_sha256(&bytes) != found.component_sha256 {
            return Err(AgentLoadError::Stale {
                node: node.to_string(),
                component: key,
                command: command.to_string(),
            });
        }
    }
    if let Some(component) = prepared.get(&found.cwasm) {
        return Ok(component.clone());
    }
    let label = match source {
        ComponentSource::Wasm(file) | ComponentSource::Folder(file) => file.clone(),
        ComponentSource::Interpreter(language) => PathBuf::from(format!("{language} interpreter")),
    };
    let component = Arc::new(
        sandbox
            .prepare_precompiled(&label, &found, command)
            .map_err(|source| AgentLoadError::Sandbox {
                node: node.to_string(),
                source,
            })?,
    );
    let shown = match source {
        ComponentSource::Interpreter(language) => format!("{language} interpreter"),
        _ => node.to_string(),
    };
    events(ComponentEvent::Loaded {
        node: shown,
        outcome: component.load.clone(),
    });
    prepared.insert(found.cwasm.clone(), component.clone());
    Ok(component)
}

/// A component source's outcome, for the next node naming it.
struct Done {
    component: Arc<PreparedComponent>,
    /// The Python folder run from source: its files, for the interpreter.
    source: Option<Arc<str>>,
}

/// A node folder made ready during one load: its component, or the source the Python
/// interpreter runs and that interpreter's component.
enum FolderReady {
    Component(PathBuf),
    Source(Arc<str>, PathBuf),
}

/// Gets the node folder `dir` ready (built, or run from source by the Python interpreter).
async fn ready_folder(
    node: &str,
    dir: &Path,
    options: &BuildOptions,
    cache_dir: &Path,
    provided: &ProvidedComponents,
    events: &(dyn Fn(ComponentEvent) + Sync),
) -> Result<FolderReady, AgentLoadError> {
    let progress = |line: &str| events(ComponentEvent::Progress(line.to_string()));
    let ready = ready_node(dir, cache_dir, options, &progress)
        .await
        .map_err(|source| AgentLoadError::Build {
            node: node.to_string(),
            source,
        })?;
    Ok(match ready {
        NodeReady::Component(built) => {
            if built.built {
                events(ComponentEvent::Built {
                    node: node.to_string(),
                    language: built.language,
                    took: built.took,
                });
            }
            FolderReady::Component(built.wasm)
        }
        NodeReady::Source(folder) => {
            let interpreter = match provided.by_key.get("interpreter:python") {
                Some(wasm) => wasm.clone(),
                None => interpreter_wasm(node, Language::Python.name(), cache_dir, events).await?,
            };
            FolderReady::Source(Arc::from(folder.to_json().to_string()), interpreter)
        }
    })
}

/// The interpreter component of `language` (built on first use), for node `node`.
async fn interpreter_wasm(
    node: &str,
    language: &str,
    cache_dir: &Path,
    events: &(dyn Fn(ComponentEvent) + Sync),
) -> Result<PathBuf, AgentLoadError> {
    let Some(interpreter) = kettle_build::interpreter(language) else {
        return Err(AgentLoadError::NoInterpreter {
            node: node.to_string(),
            language: language.to_string(),
        });
    };
    let progress = |line: &str| events(ComponentEvent::Progress(line.to_string()));
    let built = build_interpreter(interpreter, cache_dir, &progress)
        .await
        .map_err(|source| AgentLoadError::Build {
            node: node.to_string(),
            source,
        })?;
    if built.built {
        events(ComponentEvent::Built {
            node: format!("{language} interpreter"),
            language: built.language,
            took: built.took,
        });
    }
    Ok(built.wasm)
}
