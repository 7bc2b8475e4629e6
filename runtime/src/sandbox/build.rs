//! Builds Rust node folders into components (`cargo build --release --target wasm32-wasip2`),
//! installing the target with rustup when it is missing, and skipping the build when nothing
//! the component depends on has changed since the last one.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::process::Command;

const TARGET: &str = "wasm32-wasip2";

/// The WIT files the host was built with: a change to them makes every node stale.
const WIT: &[&str] = &[
    include_str!("../../../wit/world.wit"),
    include_str!("../../../wit/types.wit"),
    include_str!("../../../wit/llm.wit"),
    include_str!("../../../wit/trace.wit"),
    include_str!("../../../wit/log.wit"),
];

#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The built component (a copy owned by Kettle's cache).
    pub wasm: PathBuf,
    /// False when the previous build was still up to date.
    pub built: bool,
    pub took: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot install the Rust target {TARGET}: {output}\n  to retry by hand: {command}")]
    Toolchain { output: String, command: String },
    #[error("building {} failed:\n{output}\n  to rebuild by hand: (cd {} && {command})", dir.display(), dir.display())]
    Failed {
        dir: PathBuf,
        output: String,
        command: String,
    },
    #[error("cargo built {} but produced no .wasm component; is it a `crate-type = [\"cdylib\"]` library?", dir.display())]
    NoArtifact { dir: PathBuf },
    #[error("cannot build {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Builds the Rust node in `dir` unless its last build is up to date. `progress` receives one
/// line per step a person waits for.
pub async fn build_rust_node(
    dir: &Path,
    cache_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BuildOutcome, BuildError> {
    let started = Instant::now();
    let io = |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let dir = dir.canonicalize().map_err(io)?;
    let builds = cache_dir.join("builds");
    let id = hex::encode(Sha256::digest(dir.to_string_lossy().as_bytes()));
    let wasm = builds.join(format!("{}.wasm", &id[..32]));
    let stamp = builds.join(format!("{}.fingerprint", &id[..32]));
    let fingerprint = fingerprint(&dir).map_err(io)?;
    if wasm.is_file()
        && std::fs::read_to_string(&stamp).ok().as_deref() == Some(fingerprint.as_str())
    {
        return Ok(BuildOutcome {
            wasm,
            built: false,
            took: started.elapsed(),
        });
    }

    ensure_target(progress).await?;
    let command = format!("cargo build --release --target {TARGET}");
    progress(&format!("building {} ({command})", dir.display()));
    let output = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| BuildError::Io {
            dir: dir.clone(),
            source: e,
        })?;
    if !output.status.success() {
        return Err(BuildError::Failed {
            dir,
            output: tail(&String::from_utf8_lossy(&output.stderr), 60),
            command,
        });
    }
    let built = artifact(&dir, &String::from_utf8_lossy(&output.stdout))
        .ok_or_else(|| BuildError::NoArtifact { dir: dir.clone() })?;
    std::fs::create_dir_all(&builds).map_err(io)?;
    // Copied aside and renamed: another run may be reading the previous build.
    let partial = wasm.with_extension(format!("partial-{}", std::process::id()));
    std::fs::copy(&built, &partial).map_err(io)?;
    std::fs::rename(&partial, &wasm).map_err(io)?;
    std::fs::write(&stamp, &fingerprint).map_err(io)?;
    Ok(BuildOutcome {
        wasm,
        built: true,
        took: started.elapsed(),
    })
}

/// Hash of every source file's path, size and modification time, plus the WIT.
fn fingerprint(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for wit in WIT {
        hasher.update(wit.as_bytes());
    }
    for (relative, size, modified) in files {
        hasher.update(relative.as_bytes());
        hasher.update(size.to_le_bytes());
        hasher.update(modified.to_le_bytes());
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, u64, u128)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let meta = entry.metadata()?;
        let path = entry.path();
        if meta.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let modified = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            out.push((relative, meta.len(), modified));
        }
    }
    Ok(())
}

async fn ensure_target(progress: &(dyn Fn(&str) + Sync)) -> Result<(), BuildError> {
    if target_installed().await {
        return Ok(());
    }
    let command = format!("rustup target add {TARGET}");
    progress(&format!(
        "installing the Rust target {TARGET}, once ({command})"
    ));
    let mut last_error = String::new();
    // Several builds may race to install it (parallel tests on a fresh machine): a failed
    // attempt is retried, and succeeds as soon as the target is there, whoever installed it.
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        match Command::new("rustup")
            .args(["target", "add", TARGET])
            .stdin(Stdio::null())
            .output()
            .await
        {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => last_error = tail(&String::from_utf8_lossy(&out.stderr), 20),
            Err(e) => last_error = e.to_string(),
        }
        if target_installed().await {
            return Ok(());
        }
    }
    Err(BuildError::Toolchain {
        output: last_error,
        command,
    })
}

async fn target_installed() -> bool {
    match Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .await
    {
        Ok(out) if out.status.success() => {
            let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(TARGET)
                .is_dir()
        }
        _ => false,
    }
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

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
