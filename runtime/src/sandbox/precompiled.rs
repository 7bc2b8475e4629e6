//! Components compiled ahead of time (`kettle build --precompile`): the manifest that says which
//! component each `.cwasm` file is the compiled form of, and for which target, wasmtime and
//! engine settings; reading and checking one, so that a `kettle` without Cranelift (the
//! `runtime-only` build) can run an agent, and a full one can skip compiling.

use super::engine::ENGINE_SETTINGS;
use super::slots::PoolShape;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The manifest's file name in its folder.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's format; a `kettle` reads only its own.
pub const MANIFEST_FORMAT: u32 = 1;
/// The wasmtime Kettle is built with (checked against Cargo.lock by a test): a `.cwasm` loads
/// only in the wasmtime that wrote it.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Whether this `kettle` can compile components (Cranelift is in it).
pub const HAS_COMPILER: bool = cfg!(feature = "compiler");

/// Where a sandbox looks for precompiled components, and whether it may compile the others.
#[derive(Debug, Clone)]
pub struct PrecompiledSettings {
    /// Run only precompiled components, refusing the others: always so without a compiler
    /// (and with the `runtime-only` feature); `kettle run --precompiled-only` asks it of a
    /// full `kettle`.
    pub only: bool,
    /// The manifest's folder; by default each agent's own ([`default_dir`]).
    pub dir: Option<PathBuf>,
}

impl Default for PrecompiledSettings {
    fn default() -> Self {
        Self {
            only: !HAS_COMPILER || cfg!(feature = "runtime-only"),
            dir: None,
        }
    }
}

/// The folder `kettle build --precompile` writes for the agent file `agent` and `target`
/// (`.kettle/precompiled/{agent file stem}/{target}/` beside the agent file), where a run
/// looks unless told otherwise.
pub fn default_dir(agent: &Path, target: &str) -> PathBuf {
    let folder = agent.parent().unwrap_or(Path::new("."));
    let stem = agent
        .file_stem()
        .map_or_else(|| "agent".into(), |s| s.to_string_lossy().into_owned());
    folder
        .join(".kettle")
        .join("precompiled")
        .join(stem)
        .join(target)
}

/// The target triple this `kettle` runs on, as `--target` spells it.
pub fn host_target() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" if cfg!(target_env = "musl") => format!("{arch}-unknown-linux-musl"),
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        "windows" => format!("{arch}-pc-windows-msvc"),
        os => format!("{arch}-unknown-{os}"),
    }
}

/// The architecture and operating system of a triple: what a compiled component depends on.
fn arch_and_os(triple: &str) -> (&str, &str) {
    let mut parts = triple.split('-');
    let arch = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    // `x86_64-unknown-linux-gnu` and `aarch64-linux-gnu` alike name linux.
    let os = rest
        .iter()
        .copied()
        .find(|p| !matches!(*p, "unknown" | "pc" | "apple" | "gnu" | "musl" | "msvc"))
        .unwrap_or_default();
    (arch, os)
}

/// A digest of the engine settings a compiled component depends on ([`ENGINE_SETTINGS`], those
/// `engine_config` sets) and of the wasmtime version. It is Kettle's own description, not
/// wasmtime's: wasmtime's depends on whether Cranelift is in the binary (the features it can
/// compile), so a full and a runtime-only `kettle` would never agree. wasmtime checks the
/// exact settings again when it loads the file.
pub fn engine_fingerprint() -> String {
    fingerprint_of(ENGINE_SETTINGS)
}

fn fingerprint_of(settings: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(WASMTIME_VERSION.as_bytes());
    digest.update([0]);
    digest.update(settings.as_bytes());
    hex::encode(digest.finalize())
}

/// `kettle build --precompile`'s record of one agent's compiled components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// The agent's name and its file, relative to the manifest's folder's owner (the agent's
    /// folder).
    pub agent: String,
    pub agent_file: String,
    pub kettle: String,
    pub wasmtime: String,
    pub target: String,
    /// [`engine_fingerprint`] of the `kettle` that wrote it.
    pub engine: String,
    pub components: Vec<ManifestEntry>,
}

/// One component and its compiled form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The nodes that run it.
    pub nodes: Vec<String>,
    /// Where the component comes from, relative to the agent's folder: `wasm:{file}`,
    /// `folder:{node folder}` or `interpreter:{language}`.
    pub source: String,
    /// SHA-256 of the component (`.wasm`) it was compiled from.
    pub component_sha256: String,
    /// The compiled file, in the manifest's folder.
    pub cwasm: String,
    /// What one instance takes from the instance pool (counted from the component, which a
    /// runtime-only `kettle` may not have).
    pub pool: PoolRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoolRecord {
    pub core_instances: u32,
    pub memories: u32,
    pub tables: u32,
}

impl From<PoolShape> for PoolRecord {
    fn from(shape: PoolShape) -> Self {
        Self {
            core_instances: shape.core_instances,
            memories: shape.memories,
            tables: shape.tables,
        }
    }
}

impl From<PoolRecord> for PoolShape {
    fn from(record: PoolRecord) -> Self {
        Self {
            core_instances: record.core_instances,
            memories: record.memories,
            tables: record.tables,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrecompiledError {
    #[error("cannot read the precompiled manifest {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a precompiled manifest of this kettle: {message}\n  hint: precompile again with `{command}`", path.display())]
    Invalid {
        path: PathBuf,
        message: String,
        command: String,
    },
    #[error("the components in {} were precompiled {what}, and this kettle {ours}\n  hint: precompile them again with this kettle's version: `{command}`", dir.display())]
    Incompatible {
        dir: PathBuf,
        what: String,
        ours: String,
        command: String,
    },
}

/// A manifest read from its folder and checked against this `kettle`.
#[derive(Debug, Clone)]
pub struct Precompiled {
    dir: PathBuf,
    manifest: Manifest,
    by_source: HashMap<String, usize>,
    by_sha: HashMap<String, usize>,
}

/// A precompiled component found for a component.
#[derive(Debug, Clone)]
pub struct PrecompiledComponent {
    pub cwasm: PathBuf,
    pub component_sha256: String,
    pub shape: PoolShape,
}

impl Precompiled {
    /// Reads `{dir}/manifest.json` when there is one (`Ok(None)` when there is none) and checks
    /// that this `kettle` can load what it lists. `command` is how to precompile again, for
    /// the messages.
    pub fn open(dir: &Path, command: &str) -> Result<Option<Self>, PrecompiledError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PrecompiledError::Read { path, source }),
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| PrecompiledError::Invalid {
                path: path.clone(),
                message: e.to_string(),
                command: command.to_string(),
            })?;
        let incompatible = |what: String, ours: String| PrecompiledError::Incompatible {
            dir: dir.to_path_buf(),
            what,
            ours,
            command: command.to_string(),
        };
        if manifest.format != MANIFEST_FORMAT {
            return Err(PrecompiledError::Invalid {
                path,
                message: format!(
                    "its format is {}, this kettle reads {MANIFEST_FORMAT}",
                    manifest.format
                ),
                command: command.to_string(),
            });
        }
        let host = host_target();
        if arch_and_os(&manifest.target) != arch_and_os(&host) {
            return Err(incompatible(
                format!("for {}", manifest.target),
                format!("runs on {host}"),
            ));
        }
        if manifest.wasmtime != WASMTIME_VERSION {
            return Err(incompatible(
                format!("by wasmtime {}", manifest.wasmtime),
                format!("has wasmtime {WASMTIME_VERSION}"),
            ));
        }
        let ours = engine_fingerprint();
        if manifest.engine != ours {
            return Err(incompatible(
                format!("with engine settings {}", short(&manifest.engine)),
                format!("has {} (kettle {})", short(&ours), manifest.kettle),
            ));
        }
        let by_source = manifest
            .components
            .iter()
            .enumerate()
            .map(|(i, e)| (e.source.clone(), i))
            .collect();
        let by_sha = manifest
            .components
            .iter()
            .enumerate()
            .map(|(i, e)| (e.component_sha256.clone(), i))
            .collect();
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            manifest,
            by_source,
            by_sha,
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The compiled form of the component whose source key is `source`.
    pub fn by_source(&self, source: &str) -> Option<PrecompiledComponent> {
        self.by_source.get(source).map(|&i| self.found(i))
    }

    /// The compiled form of the component whose bytes hash to `sha256`.
    pub fn by_sha256(&self, sha256: &str) -> Option<PrecompiledComponent> {
        self.by_sha.get(sha256).map(|&i| self.found(i))
    }

    fn found(&self, index: usize) -> PrecompiledComponent {
        let entry = &self.manifest.components[index];
        PrecompiledComponent {
            cwasm: self.dir.join(&entry.cwasm),
            component_sha256: entry.component_sha256.clone(),
            shape: entry.pool.into(),
        }
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// SHA-256 of a component's bytes, as the manifest records it.
pub fn component_sha256(wasm: &[u8]) -> String {
    hex::encode(Sha256::digest(wasm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wasmtime_version_is_the_locked_one() {
        let lock = include_str!("../../../Cargo.lock");
        let locked = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"wasmtime\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
            .map(|v| v.trim_matches('"'));
        assert_eq!(locked, Some(WASMTIME_VERSION));
    }

    #[test]
    fn the_fingerprint_changes_with_the_settings() {
        assert_eq!(engine_fingerprint(), fingerprint_of(ENGINE_SETTINGS));
        assert_ne!(
            fingerprint_of(ENGINE_SETTINGS),
            fingerprint_of(&ENGINE_SETTINGS.replace("consume-fuel", ""))
        );
    }

    #[test]
    fn triples_compare_by_architecture_and_system() {
        assert_eq!(
            arch_and_os("aarch64-unknown-linux-gnu"),
            ("aarch64", "linux")
        );
        assert_eq!(arch_and_os("x86_64-apple-darwin"), ("x86_64", "darwin"));
        assert_ne!(
            arch_and_os("aarch64-unknown-linux-gnu"),
            arch_and_os(&format!("{}-unknown-linux-gnu", "x86_64"))
        );
    }

    #[test]
    fn a_manifest_for_another_wasmtime_or_machine_is_refused_saying_how_to_redo_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut manifest = Manifest {
            format: MANIFEST_FORMAT,
            agent: "hello".into(),
            agent_file: "agent.yaml".into(),
            kettle: env!("CARGO_PKG_VERSION").into(),
            wasmtime: WASMTIME_VERSION.into(),
            target: host_target(),
            engine: engine_fingerprint(),
            components: vec![],
        };
        let write = |m: &Manifest| {
            std::fs::write(
                dir.path().join(MANIFEST_FILE),
                serde_json::to_string(m).expect("json"),
            )
            .expect("write")
        };
        write(&manifest);
        let command = "kettle build --precompile agent.yaml";
        assert!(
            Precompiled::open(dir.path(), command)
                .expect("ok")
                .is_some()
        );

        manifest.wasmtime = "1.0.0".into();
        write(&manifest);
        let error = Precompiled::open(dir.path(), command)
            .expect_err("other wasmtime")
            .to_string();
        assert!(error.contains("by wasmtime 1.0.0"), "{error}");
        assert!(error.contains(command), "{error}");

        manifest.wasmtime = WASMTIME_VERSION.into();
        manifest.target = "riscv64gc-unknown-none-elf".into();
        write(&manifest);
        let error = Precompiled::open(dir.path(), command)
            .expect_err("other machine")
            .to_string();
        assert!(error.contains("for riscv64gc-unknown-none-elf"), "{error}");

        assert!(
            Precompiled::open(&dir.path().join("absent"), command)
                .expect("none")
                .is_none()
        );
    }
}
