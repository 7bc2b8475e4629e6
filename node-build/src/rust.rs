//! Rust node folders: `cargo rustc --lib --release --target wasm32-wasip2`, linked with a
//! 256 KiB shadow stack unless the node's own rustflags choose one.

use super::toolchain::RUST_TARGET;
use super::{BuildError, Toolchains, tool_output};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// The shadow stack (the part of linear memory where a Rust node keeps the locals whose address
/// is taken) a node gets when its rustflags do not set one: Rust's wasm32 default is 1 MiB, of
/// which a node typically touches a few KiB. Every execution's memory reset walks the page
/// table over the whole stack (`PAGEMAP_SCAN`), so the default size costs each component node
/// about 3 µs on a 2-core VM; 256 KiB costs as much as 64 KiB (the C toolchains' default) there.
/// The stack sits below the data, so an overflow traps (out-of-bounds access) instead of
/// overwriting anything.
pub const DEFAULT_STACK_BYTES: u32 = 256 << 10;

/// Part of the build's fingerprint: how `dir`'s node is linked (a change rebuilds it).
pub fn link_recipe(dir: &Path) -> String {
    let stack = stack_link_arg(dir);
    format!(
        "cargo rustc --lib; {}",
        stack.as_deref().unwrap_or("the rustflags' stack size")
    )
}

/// The linker option that gives the node [`DEFAULT_STACK_BYTES`], unless its rustflags choose.
fn stack_link_arg(dir: &Path) -> Option<String> {
    (!rustflags_set_stack(dir)).then(|| format!("link-arg=-zstack-size={DEFAULT_STACK_BYTES}"))
}

/// Builds the Cargo project in `dir`; returns cargo's `.wasm`.
pub async fn build(
    dir: &Path,
    toolchains: &Toolchains,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, BuildError> {
    toolchains.ensure_rust_target(progress).await?;
    let mut args = vec![
        "rustc".to_string(),
        "--lib".to_string(),
        "--release".to_string(),
        "--target".to_string(),
        RUST_TARGET.to_string(),
        "--message-format=json-render-diagnostics".to_string(),
    ];
    if let Some(stack) = stack_link_arg(dir) {
        args.extend(["--".to_string(), "-C".to_string(), stack]);
    }
    let command = format!("cargo {}", args.join(" "));
    let output = Command::new("cargo")
        .args(&args)
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

/// Whether the rustflags cargo will use for `dir` (the environment's, or a `.cargo/config.toml`
/// in `dir`, a folder above it or Cargo's home) already choose a stack size, which Kettle then
/// leaves alone.
fn rustflags_set_stack(dir: &Path) -> bool {
    const STACK_OPTION: &str = "stack-size";
    let from_environment = [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
    ]
    .iter()
    .filter_map(std::env::var_os)
    .any(|flags| flags.to_string_lossy().contains(STACK_OPTION));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    let config_folders = dir
        .ancestors()
        .map(|folder| folder.join(".cargo"))
        .chain(cargo_home);
    from_environment
        || config_folders
            .flat_map(|folder| [folder.join("config.toml"), folder.join("config")])
            .any(|config| {
                std::fs::read_to_string(config).is_ok_and(|text| text.contains(STACK_OPTION))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cargo_config_that_sets_the_stack_size_wins_over_the_default() {
        let root = tempfile::tempdir().expect("temporary folder");
        let node = root.path().join("nodes").join("mine");
        std::fs::create_dir_all(&node).expect("node folder");
        assert!(!rustflags_set_stack(&node));
        assert!(link_recipe(&node).ends_with("-zstack-size=262144"));

        std::fs::create_dir_all(root.path().join(".cargo")).expect(".cargo folder");
        std::fs::write(
            root.path().join(".cargo").join("config.toml"),
            "[target.wasm32-wasip2]\nrustflags = [\"-C\", \"link-arg=-zstack-size=1048576\"]\n",
        )
        .expect("config");
        assert!(rustflags_set_stack(&node));
        assert!(!link_recipe(&node).contains("262144"));
    }
}
