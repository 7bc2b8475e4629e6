//! TEA's `file.read` and `file.write`, performed by the host, and only inside the folders the
//! node's `permissions.fs` grants (`read` or `read_write`; writing needs `read_write`), so an
//! agent file without a grant reads and writes nothing. A relative `path` is resolved against
//! the agent file's folder, like the grants; symlinks are followed before the check, so none
//! leads out of a grant. As TEA documents, a file that cannot be read or written is a result
//! (`{success: false, error, error_type}`), and a path outside every grant fails the node.

use super::Run;
use crate::engine::RunError;
use crate::graph::template;
use crate::sandbox::FsGrant;
use serde_json::{Map, Value, json};
use std::path::{Component, Path, PathBuf};

impl Run<'_> {
    pub(super) fn run_file_action(
        &self,
        node: &str,
        write: bool,
        with: &Map<String, Value>,
        context: &template::Context,
    ) -> Result<Value, RunError> {
        let action = if write { "file.write" } else { "file.read" };
        let field = |key: &str| -> Result<Value, RunError> {
            let value = with.get(key).cloned().unwrap_or(Value::Null);
            template::render_value(&value, context)
                .map_err(|e| RunError::node(node, "template", format!("field `with.{key}`: {e}")))
        };
        let written = match field("path")? {
            Value::String(path) if !path.is_empty() => path,
            other => {
                return Err(RunError::node(
                    node,
                    "invalid_request",
                    format!("{action}: `with.path` must be a path, not {other}"),
                ));
            }
        };
        let base = self
            .agent
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let path = normalize(&base.join(&written));
        let grants = &self.agent.policy(node).grants.fs;
        let denied = || {
            RunError::node(
                node,
                "denied",
                format!(
                    "{action} of `{written}`: node `{node}` has no `permissions.fs` grant {} that covers it; add `permissions: {{fs: [{{path: FOLDER, access: {}}}]}}` to the node (FOLDER relative to the agent file)",
                    if write {
                        "with `access: read_write`"
                    } else {
                        ""
                    },
                    if write { "read_write" } else { "read" },
                ),
            )
        };
        if write {
            let content = match field("content")? {
                Value::String(text) => text,
                other => other.to_string(),
            };
            let grant = grants
                .iter()
                .filter(|g| g.writable)
                .find(|g| path.starts_with(normalize(&g.host_path)))
                .ok_or_else(denied)?;
            Ok(write_inside(grant, &path, &content)
                .map(|()| json!({"path": written, "success": true}))
                .unwrap_or_else(|e| failure(&e)))
        } else {
            let Ok(real) = path.canonicalize() else {
                // Not there (or not reachable): TEA's failure result, if a grant covers it.
                if grants
                    .iter()
                    .any(|g| path.starts_with(normalize(&g.host_path)))
                {
                    return Ok(failure(&std::io::Error::from(std::io::ErrorKind::NotFound)));
                }
                return Err(denied());
            };
            if !grants.iter().any(|g| inside(&real, g)) {
                return Err(denied());
            }
            let limit = self.limits_of(node).max_output_bytes;
            if real.metadata().is_ok_and(|m| m.len() > limit) {
                return Err(RunError::node(
                    node,
                    "limit.max_output_bytes",
                    format!(
                        "file.read of `{written}`: the file is larger than the node's max_output_bytes ({limit})"
                    ),
                ));
            }
            Ok(match std::fs::read_to_string(&real) {
                Ok(content) => json!({"content": content, "success": true}),
                Err(e) => failure(&e),
            })
        }
    }
}

/// Writes `content` at `path`, whose folders are created inside `grant`; the final folder
/// must still be inside it once symlinks are resolved, and `path` itself must not be a link.
fn write_inside(grant: &FsGrant, path: &Path, content: &str) -> std::io::Result<()> {
    let parent = path.parent().unwrap_or(path);
    std::fs::create_dir_all(parent)?;
    let real_parent = parent.canonicalize()?;
    let escapes = || {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the path leads out of the granted folder",
        )
    };
    if !inside(&real_parent, grant) {
        return Err(escapes());
    }
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(escapes());
    }
    std::fs::write(path, content)
}

fn inside(real: &Path, grant: &FsGrant) -> bool {
    grant
        .host_path
        .canonicalize()
        .is_ok_and(|root| real.starts_with(root))
}

/// `path` without `.` and `..` (lexically), so that the grant check sees where it points.
fn normalize(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// TEA's failure result.
fn failure(error: &std::io::Error) -> Value {
    let kind = match error.kind() {
        std::io::ErrorKind::NotFound => "FileNotFoundError",
        std::io::ErrorKind::PermissionDenied => "PermissionError",
        _ => "IOError",
    };
    json!({"success": false, "error": error.to_string(), "error_type": kind})
}
