//! Python node folders run from source: a folder that needs nothing but the SDK is handed, as
//! its `.py` files, to the prebuilt Python interpreter component instead of being built with
//! componentize-py. This module decides whether a folder can (no declared dependencies, every
//! import found in the folder or in the interpreter's snapshot) and reads its source.

use super::BuildError;
use super::python::entry_module;
use std::collections::BTreeMap;
use std::path::Path;

/// The modules of the interpreter's snapshot (`interpreters/python/modules.txt`).
const INTERPRETER_MODULES: &str = include_str!("../../interpreters/python/modules.txt");

/// Above this much Python source, the folder is built: it is handed to every execution.
const MAX_SOURCE_BYTES: usize = 1024 * 1024;

/// Folders never holding the node's own modules.
const SKIPPED: &[&str] = &["target", "node_modules", "__pycache__"];

/// A Python node folder's source, as the interpreter receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonSource {
    /// The node's module (`app`, or `[tool.kettle] module`).
    pub module: String,
    /// Every `.py` file of the folder: path relative to the folder (with `/`), and text.
    pub files: BTreeMap<String, String>,
}

impl PythonSource {
    /// The JSON object the interpreter reads from its config: `{"module", "files"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "module": self.module, "files": self.files })
    }
}

/// Whether the Python folder `dir` runs from source, and why not when it does not.
#[derive(Debug)]
pub enum SourceVerdict {
    Runs(PythonSource),
    /// It must be built with componentize-py, for this reason (for the user).
    Build(String),
}

/// Reads the Python node folder `dir` and decides whether the interpreter can run it.
pub fn python_source(dir: &Path) -> Result<SourceVerdict, BuildError> {
    let io = |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    if let Some(reason) = declared_dependencies(dir) {
        return Ok(SourceVerdict::Build(reason));
    }
    let module = entry_module(dir)?;
    let mut files = BTreeMap::new();
    let mut total = 0;
    collect(dir, dir, &mut files, &mut total).map_err(io)?;
    if total > MAX_SOURCE_BYTES {
        return Ok(SourceVerdict::Build(format!(
            "its Python source is over {} KiB",
            MAX_SOURCE_BYTES / 1024
        )));
    }
    let module_file = format!("{}.py", module.replace('.', "/"));
    let package_file = format!("{}/__init__.py", module.replace('.', "/"));
    if !files.contains_key(&module_file) && !files.contains_key(&package_file) {
        return Ok(SourceVerdict::Build(format!(
            "its module `{module}` is not a .py file of the folder"
        )));
    }
    let local = local_modules(&files);
    let available: std::collections::HashSet<&str> = INTERPRETER_MODULES
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    for (file, text) in &files {
        for imported in imports(text) {
            let top = imported.split('.').next().unwrap_or_default();
            if !local.contains(top) && !available.contains(imported.as_str()) {
                return Ok(SourceVerdict::Build(format!(
                    "{file} imports `{imported}`, which the Python interpreter does not hold"
                )));
            }
        }
    }
    Ok(SourceVerdict::Runs(PythonSource { module, files }))
}

/// Why the folder declares dependencies (`requirements.txt`, `[project] dependencies`), if it
/// does: only a componentize build can bring them.
fn declared_dependencies(dir: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(dir.join("requirements.txt"))
        && text
            .lines()
            .map(str::trim)
            .any(|line| !line.is_empty() && !line.starts_with('#'))
    {
        return Some("it declares dependencies in requirements.txt".into());
    }
    let text = std::fs::read_to_string(dir.join("pyproject.toml")).ok()?;
    project_dependencies(&text).then(|| "it declares dependencies in pyproject.toml".into())
}

/// Whether `[project]` has a non-empty `dependencies` array (read line by line: no TOML crate
/// for one key).
fn project_dependencies(pyproject: &str) -> bool {
    let mut in_project = false;
    let mut lines = pyproject.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with('[') {
            in_project = line == "[project]";
            continue;
        }
        let Some(rest) = line.strip_prefix("dependencies").filter(|_| in_project) else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let mut array = value.to_string();
        while !array.contains(']') {
            match lines.next() {
                Some(next) => array.push_str(next),
                None => break,
            }
        }
        let inside = array.split('#').next().unwrap_or_default();
        return inside.contains('"') || inside.contains('\'');
    }
    false
}

fn collect(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, String>,
    total: &mut usize,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || SKIPPED.contains(&name.as_ref()) {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(root, &path, files, total)?;
        } else if name.ends_with(".py") {
            let text = std::fs::read_to_string(&path)?;
            *total += text.len();
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(relative, text);
        }
    }
    Ok(())
}

/// The top-level module names the folder's files provide (`x.py`, `x/…`).
fn local_modules(files: &BTreeMap<String, String>) -> std::collections::HashSet<String> {
    files
        .keys()
        .map(|path| {
            let first = path.split('/').next().unwrap_or_default();
            first.strip_suffix(".py").unwrap_or(first).to_string()
        })
        .collect()
}

/// The absolute module names a Python text imports (`import a.b`, `from a import b`), wherever
/// the statement is (conditional imports too: a folder whose optional import is missing is
/// built, which is slower but never wrong). Relative imports are the folder's own.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for statement in text.lines().flat_map(|line| line.split(';')) {
        let statement = statement.trim();
        if let Some(names) = statement.strip_prefix("import ") {
            for name in names.split(',') {
                let name = name.split_whitespace().next().unwrap_or_default();
                if is_dotted_name(name) {
                    found.push(name.to_string());
                }
            }
        } else if let Some(rest) = statement.strip_prefix("from ") {
            let mut words = rest.split_whitespace();
            if let (Some(module), Some("import")) = (words.next(), words.next())
                && is_dotted_name(module)
            {
                found.push(module.to_string());
            }
        }
    }
    found
}

fn is_dotted_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && !part.starts_with(|c: char| c.is_ascii_digit())
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    fn verdict(files: &[(&str, &str)]) -> SourceVerdict {
        python_source(folder(files).path()).expect("readable")
    }

    #[test]
    fn a_folder_using_the_sdk_stdlib_and_its_own_modules_runs_from_source() {
        let SourceVerdict::Runs(source) = verdict(&[
            (
                "app.py",
                "import json, re as regex\nfrom kettle import node\nfrom helpers.text import shout\nfrom . import x\n",
            ),
            ("helpers/__init__.py", ""),
            ("helpers/text.py", "import math; from typing import Any\n"),
            ("README.md", "import nothing\n"),
        ]) else {
            panic!("expected to run from source");
        };
        assert_eq!(source.module, "app");
        assert_eq!(
            source.files.keys().collect::<Vec<_>>(),
            ["app.py", "helpers/__init__.py", "helpers/text.py"]
        );
    }

    #[test]
    fn dependencies_or_missing_modules_mean_a_build() {
        let cases: &[&[(&str, &str)]] = &[
            &[("app.py", "import numpy\n")],
            &[("app.py", "from xml.etree import ElementTree\n")],
            &[
                ("app.py", ""),
                ("requirements.txt", "# pinned\nrequests==2\n"),
            ],
            &[
                ("app.py", ""),
                (
                    "pyproject.toml",
                    "[project]\nname = \"n\"\ndependencies = [\n  \"attrs\",\n]\n",
                ),
            ],
        ];
        for files in cases {
            assert!(
                matches!(verdict(files), SourceVerdict::Build(_)),
                "{files:?} must be built"
            );
        }
        let empty = verdict(&[
            ("app.py", "import json\n"),
            ("requirements.txt", "# none\n"),
            (
                "pyproject.toml",
                "[project]\nname = \"n\"\ndependencies = []\n",
            ),
        ]);
        assert!(matches!(empty, SourceVerdict::Runs(_)), "{empty:?}");
    }
}
