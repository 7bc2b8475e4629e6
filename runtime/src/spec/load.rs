//! Reading an agent file: parse, type, validate, and keep what is needed to locate later errors.

use super::error::{SpecError, SpecErrors};
use super::locate::{Locator, parent};
use super::model::AgentSpec;
use super::typing;
pub use super::validate::{Findings, PathRef, check, validate};
use super::yaml::{self, Mistake};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A parsed and validated agent file.
#[derive(Debug)]
pub struct LoadedSpec {
    pub spec: AgentSpec,
    /// The agent file itself.
    pub path: PathBuf,
    /// The folder relative paths in the file are resolved against.
    pub base_dir: PathBuf,
    source: String,
    /// Built from `source` on the first located error: a file without mistakes is read once.
    locator: OnceLock<Locator>,
    /// Parts of the file that did not type (their keys are left out of `spec`).
    pub type_errors: Vec<SpecError>,
    /// The paths of those parts (`edges[0].to`).
    mistyped: Vec<String>,
}

impl LoadedSpec {
    /// An error located at `path` (such as `nodes[1].with.prompt`) in this file.
    pub fn error_at(
        &self,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> SpecError {
        let locator = self.locator.get_or_init(|| Locator::new(&self.source));
        let (line, column) = locator.find(path).unwrap_or((0, 0));
        SpecError {
            file: self.path.clone(),
            line,
            column,
            message: message.into(),
            hint,
        }
    }

    /// Whether the part at `path` (or one inside it) did not type and is reported already.
    pub fn mistyped(&self, path: &str) -> bool {
        self.mistyped.iter().any(|m| {
            m.strip_prefix(path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// Whether the part at exactly `path` did not type (a node that is not a mapping).
    pub fn mistyped_whole(&self, path: &str) -> bool {
        self.mistyped.iter().any(|m| m == path)
    }

    /// Resolves a path written in the agent file.
    pub fn resolve(&self, relative: &str) -> PathBuf {
        self.base_dir.join(relative)
    }
}

/// Loads and validates the agent file at `path`.
pub fn load_file(path: &Path) -> Result<LoadedSpec, SpecErrors> {
    let loaded = parse_file(path)?;
    let errors = validate(&loaded);
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(SpecErrors(errors))
    }
}

/// Parses and types the agent file at `path`; its type errors and structural problems are
/// reported by [`check`].
pub fn parse_file(path: &Path) -> Result<LoadedSpec, SpecErrors> {
    parse_str(&read_source(path)?, path)
}

/// The text of the agent file at `path`.
pub fn read_source(path: &Path) -> Result<String, SpecErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the agent file: {e}"),
            hint: Some(
                "check the path; `kettle run examples/hello/agent.yaml` runs the demo".into(),
            ),
        }])
    })
}

/// Parses and types agent YAML `source`, as if read from `path`. Touches no file. Only a
/// file that is not YAML fails here; type errors are kept in the result, located, and
/// reported by [`check`] with the structural problems.
pub fn parse_str(source: &str, path: &Path) -> Result<LoadedSpec, SpecErrors> {
    Ok(from_tree(parse_tree(source, path)?, source, path))
}

/// How [`parse_tree`] reads YAML: the parser and its settings. A tree kept from an earlier
/// parse (the engine's parsed-agent cache) is only reused by a Kettle whose reading is the same.
pub const TREE_FORMAT: &str = concat!(
    "serde-saphyr 2.2; strict booleans; leading-zero and underscored numbers as text; kettle ",
    env!("CARGO_PKG_VERSION")
);

/// The first step of [`parse_str`]: the YAML `source` as a value tree, untyped.
pub fn parse_tree(source: &str, path: &Path) -> Result<serde_json::Value, SpecErrors> {
    yaml::from_str(source)
        .map_err(|e| SpecErrors(vec![yaml_error(path, &e, &Locator::new(source))]))
}

/// The second step of [`parse_str`]: types `tree`, the [`parse_tree`] of `source`.
pub fn from_tree(tree: serde_json::Value, source: &str, path: &Path) -> LoadedSpec {
    let mut mistakes = Vec::new();
    let spec = typing::type_agent(tree, &mut mistakes);
    loaded(spec, mistakes, source, path)
}

/// [`from_tree`] of the tree written as JSON (`serde_json::to_string` of a [`parse_tree`]),
/// to the same result, faster than reading the JSON into a tree first. Fails only on text that
/// is not a JSON mapping.
pub fn from_tree_json(json: &str, source: &str, path: &Path) -> serde_json::Result<LoadedSpec> {
    let mut mistakes = Vec::new();
    let spec = typing::type_agent_json(json, &mut mistakes)?;
    Ok(loaded(spec, mistakes, source, path))
}

/// The loaded file, once typed: its typing mistakes located in `source`.
fn loaded(
    mut spec: AgentSpec,
    mistakes: Vec<typing::Mistake>,
    source: &str,
    path: &Path,
) -> LoadedSpec {
    if spec.name.trim().is_empty() {
        // TEA's `name:` is optional: the agent is named after its file.
        spec.name = path
            .file_stem()
            .map_or_else(|| "agent".into(), |s| s.to_string_lossy().into_owned());
    }
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let mut loaded = LoadedSpec {
        spec,
        path: path.to_path_buf(),
        base_dir,
        source: source.to_string(),
        locator: OnceLock::new(),
        type_errors: Vec::new(),
        mistyped: mistakes.iter().map(|m| m.path.clone()).collect(),
    };
    loaded.type_errors = mistakes
        .into_iter()
        .map(|m| {
            let locator = loaded.locator.get_or_init(|| Locator::new(&loaded.source));
            // An unknown key is shown at the key; a wrong value at the value.
            let at = if m.at_key {
                locator.key_position(&m.path)
            } else {
                locator.value_position(&m.path)
            };
            let mut error = loaded.error_at(&m.path, m.message, m.hint);
            if let Some((line, column)) = at {
                (error.line, error.column) = (line, column);
            }
            error
        })
        .collect();
    loaded
}

/// A parse error, prefixed with the path of the place it concerns (`nodes[0]: unknown field`).
fn yaml_error(path: &Path, error: &serde_saphyr::Error, locator: &Locator) -> SpecError {
    let problem = yaml::problem(error);
    let place = problem.position.and_then(|at| match problem.mistake {
        Mistake::UnknownKey => locator.key_at(at).map(parent),
        _ => locator.value_at(at).or_else(|| locator.key_at(at)),
    });
    let message = match place {
        Some(place) if !place.is_empty() => format!("{place}: {}", problem.message),
        _ => problem.message,
    };
    let hint = match problem.mistake {
        Mistake::UnknownKey => Some(
            "remove the key or fix its spelling; the keys this place accepts are listed above"
                .into(),
        ),
        Mistake::MissingKey => Some("add the key named above".into()),
        Mistake::Other => None,
    };
    let (line, column) = problem.position.unwrap_or((0, 0));
    SpecError {
        file: path.to_path_buf(),
        line,
        column,
        message,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agents of this repository load from their tree's JSON text (the engine's kept tree)
    /// exactly as from the tree.
    #[test]
    fn the_examples_load_alike_from_the_tree_and_from_its_json() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = Vec::new();
        for folder in ["examples", "tests/e2e/tea_corpus"] {
            let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    files.extend(
                        std::fs::read_dir(&path)
                            .into_iter()
                            .flatten()
                            .flatten()
                            .map(|e| e.path()),
                    );
                } else {
                    files.push(path);
                }
            }
        }
        files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
        assert!(files.len() >= 5, "{files:?}");
        // `KETTLE_TYPING_CORPUS=/path/to/the_edge_agent` adds every YAML mapping under a
        // folder (a TEA checkout), agent or not: both ways must still agree.
        let mut corpus = Vec::new();
        if let Some(folder) = std::env::var_os("KETTLE_TYPING_CORPUS") {
            let mut folders = vec![std::path::PathBuf::from(folder)];
            while let Some(folder) = folders.pop() {
                for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        folders.push(path);
                    } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                        corpus.push(path);
                    }
                }
            }
        }
        let mut compared = 0;
        for file in files.into_iter().chain(corpus) {
            let source = std::fs::read_to_string(&file).expect("readable example");
            let tree = match parse_tree(&source, &file) {
                Ok(tree) if tree.is_object() => tree,
                _ if !file.starts_with(&root) => continue,
                parsed => panic!("{}: {parsed:?}", file.display()),
            };
            compared += 1;
            let json = tree.to_string();
            let from_tree = from_tree(tree, &source, &file);
            let from_json = from_tree_json(&json, &source, &file).expect("a JSON mapping");
            assert_eq!(
                format!("{:?}", from_json.spec),
                format!("{:?}", from_tree.spec),
                "{}",
                file.display()
            );
            assert_eq!(from_json.type_errors, from_tree.type_errors);
        }
        eprintln!("{compared} files load alike from the tree and from its JSON");
    }
}
