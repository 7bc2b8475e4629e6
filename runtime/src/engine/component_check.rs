//! The files an agent file names, checked on disk: every `component:` is a `.wasm` file or a
//! node folder, and every folder granted to a node exists. `spec` touches no file, so these
//! checks live here and join its errors in one list.

use crate::spec::{LoadedSpec, SpecError, SpecErrors};
use kettle_build::Language;
use std::path::Path;

/// A `component:` that is neither a `.wasm` file nor a folder of a known language.
pub fn check_components(loaded: &LoadedSpec) -> Vec<SpecError> {
    let mut errors = Vec::new();
    for reference in loaded.component_refs() {
        let path = loaded.resolve(&reference.path);
        if usable_component(&path) {
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
pub fn check_granted_folders(loaded: &LoadedSpec) -> Vec<SpecError> {
    loaded
        .granted_folders()
        .into_iter()
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

/// Both checks: what [`crate::spec::validate`] leaves to the filesystem.
pub fn check_files(loaded: &LoadedSpec) -> Vec<SpecError> {
    let mut errors = check_components(loaded);
    errors.extend(check_granted_folders(loaded));
    errors
}

/// Loads the agent file at `path` with every check: [`crate::spec::load_file`]'s and the
/// files', reported together in file order.
pub fn load_checked(path: &Path) -> Result<LoadedSpec, SpecErrors> {
    let loaded = crate::spec::parse_file(path)?;
    let mut errors = crate::spec::validate(&loaded);
    errors.extend(check_files(&loaded));
    if errors.is_empty() {
        Ok(loaded)
    } else {
        errors.sort_by_key(|e| (e.line, e.column));
        Err(SpecErrors(errors))
    }
}

fn usable_component(path: &Path) -> bool {
    path.is_dir() && Language::detect(path).is_some()
        || path.is_file() && path.extension().is_some_and(|e| e == "wasm")
}
