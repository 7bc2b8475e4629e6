//! Builds node folders into components: detects the language, skips the build when nothing the
//! component depends on changed since the last one, and keeps the result in Kettle's cache.

mod fingerprint;
mod interpreters;
mod js;
mod npm_wasm;
mod python;
mod python_source;
mod rust;
mod rustc_version;
mod support;
mod toolchain;
mod trealla;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

pub use interpreters::{INTERPRETERS, Interpreter, build_interpreter, interpreter};
pub use python_source::{PythonSource, SourceVerdict, python_source};
pub use toolchain::{ToolStatus, Toolchains};

/// The languages a node folder can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A Cargo project, built for `wasm32-wasip2`.
    Rust,
    /// `app.py` or `pyproject.toml`, built with componentize-py.
    Python,
    /// `package.json` or `*.js`, bundled and built with componentize-js.
    JavaScript,
}

impl Language {
    /// The language of the node folder `dir`, if it is one.
    pub fn detect(dir: &Path) -> Option<Self> {
        if dir.join("Cargo.toml").is_file() {
            Some(Self::Rust)
        } else if dir.join("app.py").is_file() || dir.join("pyproject.toml").is_file() {
            Some(Self::Python)
        } else if dir.join("package.json").is_file() || js::has_js_files(dir) {
            Some(Self::JavaScript)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::JavaScript => "javascript",
        }
    }
}

/// What a build may give the node beyond the WIT world.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// Keep `fetch` (and so the `wasi:http` import) in JavaScript components: on for nodes
    /// granted `permissions.http`. Without it, the SDK's `fetch` rejects with a clear message.
    pub http: bool,
}

#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The built component (a copy owned by Kettle's cache).
    pub wasm: PathBuf,
    pub language: Language,
    /// False when the previous build was still up to date.
    pub built: bool,
    pub took: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{} is not a node folder: it has no Cargo.toml (Rust), app.py or pyproject.toml (Python), package.json or .js file (JavaScript)", dir.display())]
    UnknownLanguage { dir: PathBuf },
    #[error("cannot build {}: {message}\n  hint: {hint}", dir.display())]
    NoEntry {
        dir: PathBuf,
        message: String,
        hint: String,
    },
    #[error("cannot install {what}:\n{output}\n  to retry by hand: {command}")]
    Toolchain {
        what: String,
        output: String,
        command: String,
    },
    #[error("building {} failed:\n{output}\n  to rebuild by hand: (cd {} && {command})", dir.display(), dir.display())]
    Failed {
        dir: PathBuf,
        output: String,
        command: String,
    },
    #[error("cargo built {} but produced no .wasm component; is it a `crate-type = [\"cdylib\"]` library?", dir.display())]
    NoArtifact { dir: PathBuf },
    #[error("cannot make the Prolog interpreter {}: {message}", dir.display())]
    Trealla { dir: PathBuf, message: String },
    #[error("cannot build {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// How a run gets a node folder ready.
#[derive(Debug)]
pub enum NodeReady {
    /// A component: built now, or the last build still up to date.
    Component(BuildOutcome),
    /// A Python folder that needs nothing but the SDK, run from source by the Python
    /// interpreter component: no build.
    Source(PythonSource),
}

/// Gets the node in `dir` ready to run: a Python folder that needs nothing but the SDK runs
/// from source (unless `kettle build --precompile` left an up-to-date component of it); any
/// other folder is built unless its last build is up to date.
pub async fn ready_node(
    dir: &Path,
    cache_dir: &Path,
    options: &BuildOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<NodeReady, BuildError> {
    if Language::detect(dir) == Some(Language::Python) {
        if let Some(built) = up_to_date(dir, cache_dir, options).await? {
            return Ok(NodeReady::Component(built));
        }
        if let SourceVerdict::Runs(source) = python_source(dir)? {
            return Ok(NodeReady::Source(source));
        }
    }
    build_node(dir, cache_dir, options, progress)
        .await
        .map(NodeReady::Component)
}

/// Where the component of the node folder `dir` is kept, if it was ever built.
pub fn built_component(dir: &Path, cache_dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    let slot = BuildSlot::new(cache_dir, &dir);
    slot.wasm.is_file().then_some(slot.wasm)
}

/// The last build of the node in `dir`, if it is up to date.
pub async fn up_to_date(
    dir: &Path,
    cache_dir: &Path,
    options: &BuildOptions,
) -> Result<Option<BuildOutcome>, BuildError> {
    let started = Instant::now();
    let io = |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let dir = dir.canonicalize().map_err(io)?;
    let language =
        Language::detect(&dir).ok_or_else(|| BuildError::UnknownLanguage { dir: dir.clone() })?;
    let toolchains = Toolchains::for_cache(cache_dir);
    let slot = BuildSlot::new(cache_dir, &dir);
    let fingerprint = fingerprint::fingerprint(&dir, language, options, &toolchains)
        .await
        .map_err(io)?;
    Ok(slot.is_fresh(&fingerprint).then(|| BuildOutcome {
        wasm: slot.wasm,
        language,
        built: false,
        took: started.elapsed(),
    }))
}

/// Builds the node in `dir` unless its last build is up to date. `progress` receives one line
/// per step a person waits for (a toolchain install).
pub async fn build_node(
    dir: &Path,
    cache_dir: &Path,
    options: &BuildOptions,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BuildOutcome, BuildError> {
    let started = Instant::now();
    let io = |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let dir = dir.canonicalize().map_err(io)?;
    let language =
        Language::detect(&dir).ok_or_else(|| BuildError::UnknownLanguage { dir: dir.clone() })?;
    let toolchains = Toolchains::for_cache(cache_dir);
    let slot = BuildSlot::new(cache_dir, &dir);
    let fingerprint = fingerprint::fingerprint(&dir, language, options, &toolchains)
        .await
        .map_err(io)?;
    let fresh = |slot: BuildSlot| BuildOutcome {
        wasm: slot.wasm,
        language,
        built: false,
        took: started.elapsed(),
    };
    if slot.is_fresh(&fingerprint) {
        return Ok(fresh(slot));
    }
    // Two runs of the same agent build one node folder once: the second waits, then finds it
    // fresh.
    let _lock = slot.lock().await.map_err(io)?;
    if slot.is_fresh(&fingerprint) {
        return Ok(fresh(slot));
    }
    let built = match language {
        Language::Rust => rust::build(&dir, &toolchains, progress).await?,
        Language::Python => python::build(&dir, &slot.work, &toolchains, progress).await?,
        Language::JavaScript => js::build(&dir, &slot.work, options, &toolchains, progress).await?,
    };
    slot.store(&built, &fingerprint).map_err(io)?;
    Ok(BuildOutcome {
        wasm: slot.wasm,
        language,
        built: true,
        took: started.elapsed(),
    })
}

/// Where the build of one node folder is kept: `{cache}/builds/{hash of the folder's path}`.
struct BuildSlot {
    wasm: PathBuf,
    stamp: PathBuf,
    /// Scratch folder for the build's intermediate files.
    work: PathBuf,
    lock: PathBuf,
}

impl BuildSlot {
    fn new(cache_dir: &Path, dir: &Path) -> Self {
        use sha2::{Digest, Sha256};
        let id = hex::encode(Sha256::digest(dir.to_string_lossy().as_bytes()));
        let builds = cache_dir.join("builds");
        Self {
            wasm: builds.join(format!("{}.wasm", &id[..32])),
            stamp: builds.join(format!("{}.fingerprint", &id[..32])),
            work: builds.join(format!("{}.work", &id[..32])),
            lock: builds.join(format!("{}.lock", &id[..32])),
        }
    }

    fn is_fresh(&self, fingerprint: &str) -> bool {
        self.wasm.is_file()
            && std::fs::read_to_string(&self.stamp).ok().as_deref() == Some(fingerprint)
    }

    /// An exclusive lock on this slot, released when dropped.
    async fn lock(&self) -> std::io::Result<std::fs::File> {
        if let Some(parent) = self.lock.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::File::create(&self.lock)?;
        tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(std::io::Error::other)?
    }

    fn store(&self, built: &Path, fingerprint: &str) -> std::io::Result<()> {
        if let Some(parent) = self.wasm.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Copied aside and renamed: another run may be reading the previous build.
        let partial = self
            .wasm
            .with_extension(format!("partial-{}", std::process::id()));
        std::fs::copy(built, &partial)?;
        std::fs::rename(&partial, &self.wasm)?;
        std::fs::write(&self.stamp, fingerprint)
    }
}

/// The last `lines` lines of a tool's output.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A tool's own words on failure: stderr, else stdout (some tools report errors there).
fn tool_output(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&output.stdout)
    } else {
        stderr
    };
    tail(text.trim_end(), 60)
}

/// A command line as a person would type it, for "to rebuild by hand" hints.
fn shell_line(program: &Path, args: &[String]) -> String {
    std::iter::once(program.to_string_lossy().into_owned())
        .chain(args.iter().cloned())
        .map(|word| {
            if word.is_empty()
                || word.contains(|c: char| c.is_whitespace() || "'\"$`\\*?".contains(c))
            {
                format!("'{}'", word.replace('\'', r"'\''"))
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds the Rust node in `dir` (see [`build_node`], which builds any language).
pub async fn build_rust_node(
    dir: &Path,
    cache_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BuildOutcome, BuildError> {
    build_node(dir, cache_dir, &BuildOptions::default(), progress).await
}
