//! Reading an agent file: parse, type, validate, and keep what is needed to locate later errors.

use super::error::{SpecError, SpecErrors};
use super::locate::Locator;
use super::model::AgentSpec;
pub use super::validate::validate;
use std::path::{Path, PathBuf};

/// A parsed and validated agent file.
#[derive(Debug)]
pub struct LoadedSpec {
    pub spec: AgentSpec,
    /// The agent file itself.
    pub path: PathBuf,
    /// The folder relative paths in the file are resolved against.
    pub base_dir: PathBuf,
    locator: Locator,
}

impl LoadedSpec {
    /// An error located at `path` (such as `nodes[1].with.prompt`) in this file.
    pub fn error_at(
        &self,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> SpecError {
        let (line, column) = self.locator.find(path).unwrap_or((0, 0));
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

/// Parses and types agent YAML `source`, as if read from `path`.
pub fn parse_str(source: &str, path: &Path) -> Result<LoadedSpec, SpecErrors> {
    let spec: AgentSpec =
        serde_yaml::from_str(source).map_err(|e| SpecErrors(vec![yaml_error(path, &e)]))?;
    let base_dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(LoadedSpec {
        spec,
        path: path.to_path_buf(),
        base_dir,
        locator: Locator::new(source),
    })
}

fn yaml_error(path: &Path, error: &serde_yaml::Error) -> SpecError {
    let (line, column) = error
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    let mut message = error.to_string();
    // serde_yaml appends the position to its message; it is already in front.
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    let hint = if message.contains("unknown field") {
        Some(
            "remove the key or fix its spelling; the keys this place accepts are listed above"
                .into(),
        )
    } else if message.contains("missing field") {
        Some("add the key named above".into())
    } else {
        None
    };
    SpecError {
        file: path.to_path_buf(),
        line,
        column,
        message,
        hint,
    }
}
