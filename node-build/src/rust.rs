//! Rust node folders: `cargo build --release --target wasm32-wasip2`.

use super::toolchain::RUST_TARGET;
use super::{BuildError, Toolchains, tool_output};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// Builds the Cargo project in `dir`; returns cargo's `.wasm`.
pub async fn build(
    dir: &Path,
    toolchains: &Toolchains,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, BuildError> {
    toolchains.ensure_rust_target(progress).await?;
    let command = format!("cargo build --release --target {RUST_TARGET}");
    let output = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            RUST_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| BuildError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
    if !output.status.success() {
        return Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            output: tool_output(&output),
            command,
        });
    }
    artifact(dir, &String::from_utf8_lossy(&output.stdout)).ok_or_else(|| BuildError::NoArtifact {
        dir: dir.to_path_buf(),
    })
}

/// The `.wasm` cargo reports for the package whose manifest is in `dir`.
fn artifact(dir: &Path, messages: &str) -> Option<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter(|m| m["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "wasm"))
}
