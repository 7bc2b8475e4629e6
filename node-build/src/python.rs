//! Python node folders: componentize-py over the node's module (`app.py`, or the one named by
//! `[tool.kettle] module = "..."` in pyproject.toml) and the `kettle` SDK.

use super::support::{PYTHON_SDK, WIT, materialize};
use super::{BuildError, Toolchains, shell_line, tool_output};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// The module componentize-py wraps: it imports the node (which registers its `@node`
/// function) and the SDK's `WitWorld`, the class componentize-py looks for.
const ENTRY: &str = "_kettle_main";

pub async fn build(
    dir: &Path,
    work: &Path,
    toolchains: &Toolchains,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, BuildError> {
    let module = entry_module(dir)?;
    let componentize_py = toolchains.ensure_python(progress).await?;
    let io = |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let support = toolchains.support_dir();
    let wit = materialize(&support, "wit", WIT).map_err(io)?;
    let sdk = materialize(&support, "python-sdk", PYTHON_SDK).map_err(io)?;
    let entry = work.join("entry");
    std::fs::create_dir_all(&entry).map_err(io)?;
    std::fs::write(entry.join(format!("{ENTRY}.py")), entry_source(&module)).map_err(io)?;
    // An empty venv: componentize-py adds `$VIRTUAL_ENV`'s site-packages to the component,
    // and must not pick up the one it is installed in, nor the system's.
    let env = work.join("env");
    std::fs::create_dir_all(env.join("lib/site-packages")).map_err(io)?;
    let out = work.join("node.wasm");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let args = vec![
        "-d".into(),
        path(&wit),
        "-w".into(),
        "node".into(),
        "componentize".into(),
        "-p".into(),
        path(dir),
        "-p".into(),
        path(&sdk),
        "-p".into(),
        path(&entry),
        ENTRY.into(),
        "-o".into(),
        path(&out),
    ];
    let output = Command::new(&componentize_py)
        .args(&args)
        .current_dir(dir)
        .env("VIRTUAL_ENV", &env)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io)?;
    if !output.status.success() || !out.is_file() {
        return Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            output: tool_output(&output),
            command: format!(
                "VIRTUAL_ENV={} {}",
                path(&env),
                shell_line(&componentize_py, &args)
            ),
        });
    }
    Ok(out)
}

/// The entry module's text: imports the node and the SDK's `WitWorld`, and keeps the node's
/// source lines in the snapshot for its tracebacks (a component has no files at run time).
fn entry_source(module: &str) -> String {
    let depth = module.matches('.').count();
    format!(
        "import os as _os\n\
         import sys as _sys\n\
         import {module}  # registers the node's @node function\n\
         from kettle import _traceback\n\
         from kettle._world import WitWorld  # noqa: F401\n\
         \n\
         _file = _sys.modules[\"{module}\"].__file__\n\
         _root = _os.path.dirname(_file)\n\
         for _ in range({depth} + _file.endswith(\"__init__.py\")):\n    \
             _root = _os.path.dirname(_root)\n\
         _traceback.set_root(_root)\n\
         _traceback.remember_sources()\n"
    )
}

/// The node's module name.
pub(crate) fn entry_module(dir: &Path) -> Result<String, BuildError> {
    if let Some(module) = std::fs::read_to_string(dir.join("pyproject.toml"))
        .ok()
        .and_then(|text| kettle_module(&text))
    {
        return Ok(module);
    }
    if dir.join("app.py").is_file() {
        return Ok("app".into());
    }
    Err(BuildError::NoEntry {
        dir: dir.to_path_buf(),
        message: "no app.py, and pyproject.toml names no module".into(),
        hint: "put the node's @node function in app.py, or add `[tool.kettle]` with `module = \"my_module\"` to pyproject.toml".into(),
    })
}

/// `module = "..."` of the `[tool.kettle]` table, read line by line (no TOML crate for one key).
fn kettle_module(pyproject: &str) -> Option<String> {
    let mut in_table = false;
    for line in pyproject.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[tool.kettle]";
        } else if let Some(value) = line
            .strip_prefix("module")
            .filter(|_| in_table)
            .map(str::trim_start)
        {
            let value = value.strip_prefix('=')?.trim();
            let name = value.trim_matches(|c| c == '"' || c == '\'');
            let valid = !name.is_empty()
                && name.split('.').all(|part| {
                    part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !part.is_empty()
                });
            return valid.then(|| name.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::kettle_module;

    #[test]
    fn reads_the_module_of_tool_kettle() {
        let text =
            "[project]\nname = \"x\"\nmodule = \"no\"\n\n[tool.kettle]\nmodule = \"my_node\"\n";
        assert_eq!(kettle_module(text).as_deref(), Some("my_node"));
        assert_eq!(kettle_module("[project]\nname = \"x\"\n"), None);
        assert_eq!(kettle_module("[tool.kettle]\nmodule = \"a; rm\"\n"), None);
    }
}
