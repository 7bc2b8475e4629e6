//! `rustc --version` for a Rust node's build fingerprint, remembered in the toolchains folder
//! while nothing that chooses or replaces the compiler has changed. Asking rustup's proxy starts
//! two processes (about 30 ms here), and it was asked on every `kettle run` of an agent with a
//! Rust node folder, even when the build was fresh.
//!
//! What chooses the compiler: `PATH` and the rustup variables, the working directory and any
//! `rust-toolchain` file above it, rustup's settings (default toolchain, directory overrides). What
//! replaces it: installing, updating or removing a toolchain, which rewrites that toolchain's
//! `bin/rustc`. The probe stamps (length, modification time, inode) all of these; a change of any
//! asks rustc again.

use sha2::{Digest, Sha256};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The memo's file name in the toolchains folder: one line per probe key, `{key} {version}`,
/// the newest last.
const MEMO: &str = "rustc-version";
/// Lines kept in the memo (runs from several working directories each have a key).
const MEMO_LINES: usize = 64;

/// What `rustc` resolves to in this process's environment.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    variables: Vec<(&'static str, Option<OsString>)>,
    cwd: Option<PathBuf>,
    rustup_home: Option<PathBuf>,
}

/// The variables that choose which `rustc` runs.
const VARIABLES: &[&str] = &[
    "PATH",
    "RUSTC",
    "RUSTUP_TOOLCHAIN",
    "RUSTUP_HOME",
    "CARGO_HOME",
];

impl Probe {
    pub(crate) fn from_env() -> Self {
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .filter(|home| !home.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".rustup")));
        Self {
            variables: VARIABLES
                .iter()
                .map(|name| (*name, std::env::var_os(name)))
                .collect(),
            cwd: std::env::current_dir().ok(),
            rustup_home,
        }
    }

    /// A digest of everything above; equal keys mean `rustc --version` answers as before.
    pub(crate) fn key(&self) -> String {
        let mut hasher = Sha256::new();
        for (name, value) in &self.variables {
            hasher.update(name.as_bytes());
            hasher.update(
                value
                    .as_ref()
                    .map_or(&b"\0unset"[..], |v| v.as_encoded_bytes()),
            );
            hasher.update(b"\n");
        }
        if let Some(cwd) = &self.cwd {
            hasher.update(cwd.as_os_str().as_encoded_bytes());
            for dir in cwd.ancestors() {
                for name in ["rust-toolchain", "rust-toolchain.toml"] {
                    stamp_into(&mut hasher, &dir.join(name));
                }
            }
        }
        let on_path = self
            .variables
            .iter()
            .find(|(name, _)| *name == "PATH")
            .and_then(|(_, path)| path.as_ref())
            .and_then(|path| super::toolchain::which_in(path, "rustc"));
        match on_path {
            Some(rustc) => {
                hasher.update(rustc.as_os_str().as_encoded_bytes());
                stamp_into(&mut hasher, &rustc);
            }
            None => hasher.update(b"\0no rustc on PATH"),
        }
        if let Some(home) = &self.rustup_home {
            stamp_into(&mut hasher, &home.join("settings.toml"));
            let mut toolchains: Vec<PathBuf> = std::fs::read_dir(home.join("toolchains"))
                .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
                .unwrap_or_default();
            toolchains.sort();
            for toolchain in toolchains {
                hasher.update(toolchain.as_os_str().as_encoded_bytes());
                stamp_into(&mut hasher, &toolchain.join("bin").join("rustc"));
            }
        }
        hex::encode(hasher.finalize())
    }
}

/// Length, modification time and inode of `path` (through symlinks), or that it is missing.
fn stamp_into(hasher: &mut Sha256, path: &Path) {
    match std::fs::metadata(path) {
        Ok(meta) => {
            hasher.update(b"present");
            hasher.update(meta.len().to_le_bytes());
            hasher.update(meta.mtime().to_le_bytes());
            hasher.update(meta.mtime_nsec().to_le_bytes());
            hasher.update(meta.ino().to_le_bytes());
        }
        Err(_) => hasher.update(b"missing"),
    }
}

/// The version remembered in `toolchains_dir` for `key`, if any.
pub(crate) fn remembered(toolchains_dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(toolchains_dir.join(MEMO)).ok()?;
    text.lines().rev().find_map(|line| {
        let (stored_key, version) = line.split_once(' ')?;
        (stored_key == key && !version.trim().is_empty()).then(|| version.trim().to_string())
    })
}

/// Remembers `version` for `key`, keeping the newest [`MEMO_LINES`] keys. Written to a temporary
/// file and renamed, so a concurrent reader sees the old memo or the new one; a failure (or a
/// concurrent writer's line lost) only means rustc is asked again next time.
pub(crate) fn remember(toolchains_dir: &Path, key: &str, version: &str) {
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(toolchains_dir)?;
        let memo = toolchains_dir.join(MEMO);
        let old = std::fs::read_to_string(&memo).unwrap_or_default();
        let mut lines: Vec<&str> = old
            .lines()
            .filter(|line| line.split_once(' ').is_some_and(|(k, _)| k != key))
            .collect();
        let newest = format!("{key} {}", version.replace('\n', " "));
        lines.push(&newest);
        let keep = &lines[lines.len().saturating_sub(MEMO_LINES)..];
        let partial = toolchains_dir.join(format!("{MEMO}.{}.partial", std::process::id()));
        std::fs::write(&partial, keep.join("\n") + "\n")?;
        std::fs::rename(&partial, memo)
    };
    let _ = write();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(home: &Path, cwd: &Path) -> Probe {
        Probe {
            variables: vec![("PATH", Some(home.join("bin").into_os_string()))],
            cwd: Some(cwd.to_path_buf()),
            rustup_home: Some(home.to_path_buf()),
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn the_key_changes_with_whatever_chooses_or_replaces_the_compiler() {
        let home = tempfile::tempdir().expect("tempdir");
        let home = home.path();
        let cwd = home.join("project/node");
        std::fs::create_dir_all(&cwd).expect("mkdir");
        write(&home.join("bin/rustc"), "proxy");
        write(&home.join("toolchains/stable/bin/rustc"), "rustc 1.0");
        write(
            &home.join("settings.toml"),
            "default_toolchain = \"stable\"",
        );
        let mut keys = vec![probe(home, &cwd).key()];
        assert_eq!(
            keys[0],
            probe(home, &cwd).key(),
            "the same files give the same key"
        );

        // `rustup update`: the toolchain's compiler is replaced.
        write(
            &home.join("toolchains/stable/bin/rustc"),
            "rustc 1.1 (longer)",
        );
        keys.push(probe(home, &cwd).key());
        // Another toolchain installed.
        write(&home.join("toolchains/nightly/bin/rustc"), "rustc nightly");
        keys.push(probe(home, &cwd).key());
        // `rustup default nightly`.
        write(
            &home.join("settings.toml"),
            "default_toolchain = \"nightly\"!",
        );
        keys.push(probe(home, &cwd).key());
        // A `rust-toolchain.toml` above the working directory.
        write(&home.join("project/rust-toolchain.toml"), "[toolchain]");
        keys.push(probe(home, &cwd).key());
        // Another working directory.
        keys.push(probe(home, &home.join("project")).key());
        // Another PATH.
        let mut other_path = probe(home, &cwd);
        other_path.variables = vec![("PATH", Some(OsString::from("/nowhere")))];
        keys.push(other_path.key());

        for (i, key) in keys.iter().enumerate() {
            for (j, other) in keys.iter().enumerate().skip(i + 1) {
                assert_ne!(key, other, "changes {i} and {j} gave the same key");
            }
        }
    }

    #[test]
    fn a_version_is_remembered_for_its_key_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(remembered(dir.path(), "k1"), None);
        remember(dir.path(), "k1", "rustc 1.95.0 (59807616e 2026-04-14)");
        assert_eq!(
            remembered(dir.path(), "k1").as_deref(),
            Some("rustc 1.95.0 (59807616e 2026-04-14)")
        );
        assert_eq!(remembered(dir.path(), "k2"), None);
        remember(dir.path(), "k2", "rustc 1.96.0");
        assert_eq!(
            remembered(dir.path(), "k2").as_deref(),
            Some("rustc 1.96.0")
        );
        assert_eq!(
            remembered(dir.path(), "k1").as_deref(),
            Some("rustc 1.95.0 (59807616e 2026-04-14)"),
            "another working directory's key does not push out the first"
        );
        remember(dir.path(), "k1", "rustc 1.97.0");
        assert_eq!(
            remembered(dir.path(), "k1").as_deref(),
            Some("rustc 1.97.0")
        );
        for i in 0..MEMO_LINES {
            remember(dir.path(), &format!("other{i}"), "rustc 1.0.0");
        }
        assert_eq!(
            remembered(dir.path(), "k1"),
            None,
            "only the newest keys are kept"
        );
        let memo = std::fs::read_to_string(dir.path().join(MEMO)).expect("memo");
        assert_eq!(memo.lines().count(), MEMO_LINES);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "no partial file is left behind");
    }
}
