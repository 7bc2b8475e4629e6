//! The files an agent file names, checked on disk: every `component:` is a `.wasm` file or a
//! node folder, and every folder granted to a node exists. `spec` touches no file, so these
//! checks live here and join its errors, and the graph's, in one list.

use crate::graph::{self, Graph};
use crate::spec::{self, LoadedSpec, PathRef, SpecError, SpecErrors};
use kettle_build::Language;
use std::collections::HashSet;
use std::path::Path;

/// A `component:` that is neither a `.wasm` file nor a folder of a known language.
/// `provided`: components given from elsewhere (by their path), which need not be on disk.
fn check_components(
    loaded: &LoadedSpec,
    components: &[PathRef],
    provided: &dyn Fn(&Path) -> bool,
) -> Vec<SpecError> {
    let mut errors = Vec::new();
    // Many nodes may name one component: the disk is asked once per path as written.
    let mut usable: HashSet<&str> = HashSet::new();
    for reference in components {
        if usable.contains(reference.path.as_str()) {
            continue;
        }
        let path = loaded.resolve(&reference.path);
        if usable_component(&path) || provided(&path) {
            usable.insert(&reference.path);
            continue;
        }
        let what = if path.exists() {
            "is neither a .wasm file nor a node folder (with a Cargo.toml, app.py, pyproject.toml, package.json or .js file)"
        } else {
            "does not exist"
        };
        errors.push(loaded.error_at(
            &reference.at,
            format!(
                "component of node `{}`: {} {what}",
                reference.node,
                path.display()
            ),
            Some(
                "give a .wasm component or a node folder (Rust, Python or JavaScript), relative to the agent file"
                    .into(),
            ),
        ));
    }
    errors
}

/// A granted folder (`permissions.fs[].path`) that is not a folder.
fn check_granted_folders(loaded: &LoadedSpec, folders: &[PathRef]) -> Vec<SpecError> {
    folders
        .iter()
        .filter(|grant| !loaded.resolve(&grant.path).is_dir())
        .map(|grant| {
            loaded.error_at(
                &grant.at,
                format!(
                    "node `{}`: granted folder {} is not a folder",
                    grant.node,
                    loaded.resolve(&grant.path).display()
                ),
                Some("grant an existing folder, relative to the agent file".into()),
            )
        })
        .collect()
}

/// Loads the agent file at `path` with every check that needs no build: its structure
/// (`spec`), the files it names, and its graph (routes, templates, expressions). Every problem
/// is reported at once, in file order.
pub fn load_checked(path: &Path) -> Result<(LoadedSpec, Graph), SpecErrors> {
    load_with_warnings(path)
        .map(|(loaded, graph, _)| (loaded, graph))
        .map_err(|(errors, _)| errors)
}

/// [`load_checked`], with the warnings too (in file order): what TEA allows but is likely a
/// mistake, such as a node no route reaches. The warnings come with the errors too.
#[allow(clippy::type_complexity)]
pub fn load_with_warnings(
    path: &Path,
) -> Result<(LoadedSpec, Graph, Vec<SpecError>), (SpecErrors, Vec<SpecError>)> {
    load_providing(path, None, &|_| false)
}

/// [`load_with_warnings`], where a component for which `provided` is true (given from
/// elsewhere, such as fetched by its digest) need not be on disk; with `cache_dir`, the parsed
/// file is kept there and reused (`parsed_cache`).
#[allow(clippy::type_complexity)]
pub(crate) fn load_providing(
    path: &Path,
    cache_dir: Option<&Path>,
    provided: &dyn Fn(&Path) -> bool,
) -> Result<(LoadedSpec, Graph, Vec<SpecError>), (SpecErrors, Vec<SpecError>)> {
    let loaded =
        super::parsed_cache::parse_file(path, cache_dir).map_err(|errors| (errors, Vec::new()))?;
    let findings = spec::check(&loaded);
    let mut errors = findings.errors;
    let mut warnings = findings.warnings;
    warnings.sort_by_key(|e| (e.line, e.column));
    errors.extend(check_components(&loaded, &findings.components, provided));
    errors.extend(check_granted_folders(&loaded, &findings.folders));
    let graph = graph::compile(&loaded).map_err(|more| errors.extend(more.0));
    match graph {
        Ok(graph) if errors.is_empty() => Ok((loaded, graph, warnings)),
        _ => {
            errors.sort_by_key(|e| (e.line, e.column));
            errors.dedup();
            Err((SpecErrors(errors), warnings))
        }
    }
}

fn usable_component(path: &Path) -> bool {
    path.is_dir() && Language::detect(path).is_some()
        || path.is_file() && path.extension().is_some_and(|e| e == "wasm")
}
