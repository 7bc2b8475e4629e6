//! What a build depends on, hashed: the node's source files (path, size, modification time),
//! the WIT, the SDK compiled into `kettle`, the toolchain's version and the build options.

use super::support::{JS_SDK, PYTHON_SDK, WIT, digest};
use super::{BuildOptions, Language, Toolchains};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::UNIX_EPOCH;

/// Folders never read by a build (or rebuilt from the others).
const SKIPPED: &[&str] = &["target", "node_modules", "__pycache__"];

pub async fn fingerprint(
    dir: &Path,
    language: Language,
    options: &BuildOptions,
    toolchains: &Toolchains,
) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    hasher.update(language.name());
    hasher.update(digest(WIT));
    match language {
        Language::Rust => {
            hasher.update(toolchains.rustc_version().await);
            hasher.update(super::rust::link_recipe(dir));
        }
        Language::Python => {
            hasher.update(digest(PYTHON_SDK));
            hasher.update(super::toolchain::COMPONENTIZE_PY);
        }
        Language::JavaScript => {
            hasher.update(digest(JS_SDK));
            hasher.update(super::toolchain::COMPONENTIZE_JS);
            hasher.update(super::toolchain::ROLLDOWN);
            hasher.update(if options.http { "http" } else { "no-http" });
        }
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
        if name.starts_with('.') || SKIPPED.contains(&name.as_ref()) {
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
