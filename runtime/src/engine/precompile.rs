//! An agent's components compiled ahead of time: `kettle build --precompile` writes them, one
//! `.cwasm` file per component beside a manifest (with Cranelift, for this machine or another
//! target), and the loader finds them through that manifest — the only way a `kettle` without
//! Cranelift (the `runtime-only` build) runs an agent.

use super::agent::AgentLoadError;
use crate::graph::ComponentSource;
use crate::sandbox::{Precompiled, PrecompiledSettings, default_dir, host_target};
use std::path::{Path, PathBuf};

/// How a component is named in the manifest: where it comes from, relative to the agent's
/// folder, so that the folder can be copied to another machine.
pub fn source_key(agent: &Path, source: &ComponentSource) -> String {
    let folder = agent.parent().unwrap_or(Path::new(""));
    let relative = |path: &Path| -> String {
        // Canonical first: the agent may be named from any working directory.
        let canonical = match (path.canonicalize(), folder.canonicalize()) {
            (Ok(path), Ok(folder)) => path.strip_prefix(&folder).ok().map(Path::to_path_buf),
            _ => None,
        };
        let shown = canonical
            .or_else(|| path.strip_prefix(folder).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf());
        shown.to_string_lossy().replace('\\', "/")
    };
    match source {
        ComponentSource::Wasm(file) => format!("wasm:{}", relative(file)),
        ComponentSource::Folder(dir) => format!("folder:{}", relative(dir)),
        ComponentSource::Interpreter(language) => format!("interpreter:{language}"),
    }
}

/// The command that precompiles the agent at `agent` for this machine, for messages.
pub fn precompile_command(agent: &Path) -> String {
    let target = if crate::sandbox::HAS_COMPILER {
        String::new()
    } else {
        // Run elsewhere, by a full kettle: for this machine, then.
        format!(" --target {}", host_target())
    };
    format!("kettle build --precompile {}{target}", agent.display())
}

/// The precompiled components of the agent at `agent`, as `settings` say where to look: `None`
/// when there are none (no manifest in the default folder). A manifest this `kettle` cannot
/// use is an error when the run needs it (`only`) or was pointed at it; otherwise it is
/// ignored with a warning, and the components are compiled as usual.
pub(super) fn open_for(
    agent: &Path,
    settings: &PrecompiledSettings,
) -> Result<Option<Precompiled>, AgentLoadError> {
    let command = precompile_command(agent);
    let (dir, explicit) = match &settings.dir {
        Some(dir) => (dir.clone(), true),
        None => (default_dir(agent, &host_target()), false),
    };
    match Precompiled::open(&dir, &command) {
        Ok(None) if explicit => Err(AgentLoadError::NoManifest { dir, command }),
        Ok(found) => Ok(found),
        Err(error) if explicit || settings.only => Err(AgentLoadError::Precompiled(error)),
        Err(error) => {
            tracing::warn!(%error, "ignoring the precompiled components; compiling instead");
            Ok(None)
        }
    }
}

/// Why a component may not be compiled here, for the refusal's message.
pub(super) fn only_reason() -> &'static str {
    if crate::sandbox::HAS_COMPILER {
        "--precompiled-only asks for precompiled components only"
    } else {
        "this kettle is a runtime-only build, without Cranelift, which runs precompiled components only"
    }
}

/// Where the agent's precompiled components go unless told otherwise.
pub fn default_out(agent: &Path, target: Option<&str>) -> PathBuf {
    default_dir(agent, target.unwrap_or(&host_target()))
}

#[cfg(feature = "compiler")]
pub use compile::{PrecompileError, PrecompileOptions, PrecompileReport, precompile_agent};

#[cfg(feature = "compiler")]
mod compile {
    use super::source_key;
    use crate::engine::{ComponentEvent, component_check, policy::NodePolicy};
    use crate::graph::ComponentSource;
    use crate::sandbox::{
        MANIFEST_FILE, MANIFEST_FORMAT, Manifest, ManifestEntry, PoolShape, WASMTIME_VERSION,
        component_sha256, engine_fingerprint, host_target, precompile_engine,
    };
    use crate::spec::SpecErrors;
    use kettle_build::{BuildError, BuildOptions, build_interpreter, build_node};
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    /// What to precompile for, and where to.
    #[derive(Debug, Clone, Default)]
    pub struct PrecompileOptions {
        /// A target triple; this machine's when `None`.
        pub target: Option<String>,
        /// The manifest's folder; [`super::default_out`] when `None`.
        pub out: Option<PathBuf>,
    }

    /// What `precompile_agent` wrote.
    #[derive(Debug, Clone)]
    pub struct PrecompileReport {
        pub dir: PathBuf,
        pub manifest: Manifest,
        /// Per component (manifest order): the time compiling it took.
        pub took: Vec<Duration>,
    }

    #[derive(Debug, thiserror::Error)]
    pub enum PrecompileError {
        #[error("{0}")]
        Spec(#[from] SpecErrors),
        #[error("node `{node}`: {source}")]
        Build { node: String, source: BuildError },
        #[error("node `{node}`: Kettle has no interpreter for {language} inline code")]
        NoInterpreter { node: String, language: String },
        #[error(
            "cannot compile for target `{target}`: {message}\n  hint: give a target triple wasmtime supports, such as aarch64-unknown-linux-gnu or x86_64-unknown-linux-gnu"
        )]
        Target { target: String, message: String },
        #[error("node `{node}`: cannot compile {}: {message}", path.display())]
        Compile {
            node: String,
            path: PathBuf,
            message: String,
        },
        #[error("cannot write {}: {source}", path.display())]
        Write {
            path: PathBuf,
            source: std::io::Error,
        },
    }

    /// Builds every component of the agent at `agent` (node folders, Python ones included, and
    /// the interpreters of its inline code), compiles each for `options.target`, and writes
    /// `{sha256}.cwasm` files beside `manifest.json` in the output folder.
    pub async fn precompile_agent(
        agent: &Path,
        options: &PrecompileOptions,
        cache_dir: &Path,
        events: &(dyn Fn(ComponentEvent) + Sync),
    ) -> Result<PrecompileReport, PrecompileError> {
        let (loaded, graph) = component_check::load_checked(agent)?;
        let target = options.target.clone().unwrap_or_else(host_target);
        let engine =
            precompile_engine(options.target.as_deref()).map_err(|e| PrecompileError::Target {
                target: target.clone(),
                message: format!("{e:#}"),
            })?;
        let dir = options
            .out
            .clone()
            .unwrap_or_else(|| super::default_out(agent, options.target.as_deref()));
        let write = |path: &Path, bytes: &[u8]| {
            std::fs::create_dir_all(&dir)
                .and_then(|()| {
                    // Written aside and renamed, so that a running kettle never reads half a file.
                    let partial = path.with_extension(format!("partial-{}", std::process::id()));
                    std::fs::write(&partial, bytes)?;
                    std::fs::rename(&partial, path)
                })
                .map_err(|source| PrecompileError::Write {
                    path: path.to_path_buf(),
                    source,
                })
        };
        let progress = |line: &str| events(ComponentEvent::Progress(line.to_string()));
        let mut entries: Vec<ManifestEntry> = Vec::new();
        let mut took = Vec::new();
        let mut by_source: HashMap<String, usize> = HashMap::new();
        for (_, node, source) in graph.components() {
            let key = source_key(agent, source);
            if let Some(&i) = by_source.get(&key) {
                if !entries[i].nodes.iter().any(|n| n == node) {
                    entries[i].nodes.push(node.to_string());
                }
                continue;
            }
            let build = |source| PrecompileError::Build {
                node: node.to_string(),
                source,
            };
            let wasm: PathBuf = match source {
                ComponentSource::Wasm(file) => file.clone(),
                ComponentSource::Folder(folder) => {
                    // As the loader builds it: JavaScript keeps `fetch` only with an http grant.
                    let spec = loaded.spec.nodes.iter().find(|n| n.name == node);
                    let http = spec
                        .is_some_and(|n| !NodePolicy::from_spec(&loaded, n).grants.http.is_empty());
                    build_node(folder, cache_dir, &BuildOptions { http }, &progress)
                        .await
                        .map_err(build)?
                        .wasm
                }
                ComponentSource::Interpreter(language) => {
                    let Some(interpreter) = kettle_build::interpreter(language) else {
                        return Err(PrecompileError::NoInterpreter {
                            node: node.to_string(),
                            language: language.clone(),
                        });
                    };
                    build_interpreter(interpreter, cache_dir, &progress)
                        .await
                        .map_err(build)?
                        .wasm
                }
            };
            let compile_error = |message: String| PrecompileError::Compile {
                node: node.to_string(),
                path: wasm.clone(),
                message,
            };
            let bytes = std::fs::read(&wasm).map_err(|e| compile_error(e.to_string()))?;
            let sha = component_sha256(&bytes);
            let shape = PoolShape::of(&bytes).map_err(|e| compile_error(e.to_string()))?;
            let started = Instant::now();
            let compiled = engine
                .precompile_component(&bytes)
                .map_err(|e| compile_error(format!("{e:#}")))?;
            took.push(started.elapsed());
            let cwasm = format!("{sha}.cwasm");
            write(&dir.join(&cwasm), &compiled)?;
            by_source.insert(key.clone(), entries.len());
            entries.push(ManifestEntry {
                nodes: vec![node.to_string()],
                source: key,
                component_sha256: sha,
                cwasm,
                pool: shape.into(),
            });
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            agent: loaded.spec.name.clone(),
            agent_file: agent
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            kettle: env!("CARGO_PKG_VERSION").to_string(),
            wasmtime: WASMTIME_VERSION.to_string(),
            target,
            engine: engine_fingerprint(),
            components: entries,
        };
        let path = dir.join(MANIFEST_FILE);
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| PrecompileError::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        write(&path, text.as_bytes())?;
        Ok(PrecompileReport {
            dir,
            manifest,
            took,
        })
    }
}
