//! Reading an agent file: parse, type, validate, and keep what is needed to locate later errors.

use super::error::{SpecError, SpecErrors};
use super::locate::{Locator, parent};
use super::model::AgentSpec;
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

/// Parses and types the agent file at `path`, without the structural checks of [`validate`].
pub fn parse_file(path: &Path) -> Result<LoadedSpec, SpecErrors> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read the agent file: {e}"),
            hint: Some(
                "check the path; `kettle run examples/hello/agent.yaml` runs the demo".into(),
            ),
        }])
    })?;
    parse_str(&source, path)
}

/// Parses and types agent YAML `source`, as if read from `path`. Touches no file.
pub fn parse_str(source: &str, path: &Path) -> Result<LoadedSpec, SpecErrors> {
    let spec: AgentSpec = yaml::from_str(source)
        .map_err(|e| SpecErrors(vec![yaml_error(path, &e, &Locator::new(source))]))?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(LoadedSpec {
        spec,
        path: path.to_path_buf(),
        base_dir,
        source: source.to_string(),
        locator: OnceLock::new(),
    })
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
