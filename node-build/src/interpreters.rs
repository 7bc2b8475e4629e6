//! The interpreters of TEA's inline code: node folders compiled into `kettle` (so that an
//! installed binary needs no repository), written into Kettle's cache and built like any
//! node folder on first use. Adding a language is one entry in [`INTERPRETERS`].

use super::support::materialize;
use super::{BuildError, BuildOptions, BuildOutcome, Toolchains, build_node};
use std::path::Path;

/// An interpreter component's source: a node folder whose `config.code` is the code it runs.
#[derive(Debug, Clone, Copy)]
pub struct Interpreter {
    /// The name of `language:` in TEA's YAML (`python`, `lua`).
    pub language: &'static str,
    /// The folder's files, relative path and text.
    pub files: &'static [(&'static str, &'static str)],
}

/// Every language inline code may be written in, and its interpreter's folder.
pub const INTERPRETERS: &[Interpreter] = &[Interpreter {
    language: "python",
    files: &[("app.py", include_str!("../../interpreters/python/app.py"))],
}];

/// The interpreter of `language`, if Kettle has one.
pub fn interpreter(language: &str) -> Option<&'static Interpreter> {
    INTERPRETERS.iter().find(|i| i.language == language)
}

/// Writes the interpreter's folder into the cache (once per version of its source) and builds
/// it unless its last build is up to date.
pub async fn build_interpreter(
    interpreter: &Interpreter,
    cache_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BuildOutcome, BuildError> {
    let support = Toolchains::for_cache(cache_dir).support_dir();
    let dir = materialize(
        &support,
        &format!("interpreter-{}", interpreter.language),
        interpreter.files,
    )
    .map_err(|source| BuildError::Io {
        dir: support.clone(),
        source,
    })?;
    build_node(&dir, cache_dir, &BuildOptions::default(), progress).await
}
