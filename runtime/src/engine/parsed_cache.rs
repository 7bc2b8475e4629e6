//! The parsed-agent cache: an agent file's YAML read into a value tree once, and kept under the
//! cache directory as JSON, named by the SHA-256 of the file's text and of how it was read
//! ([`spec::TREE_FORMAT`]). Reading YAML with positions is most of what loading a large agent
//! costs; reading the kept JSON is a small part of it. Typing, checks and the graph are done on
//! every load, from the kept JSON, to exactly what a fresh parse gives.

use crate::spec::{self, LoadedSpec, SpecErrors};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where kept trees live under the cache directory.
const FOLDER: &str = "parsed-agents";

/// Parses the agent file at `path` as [`spec::parse_file`] does, reusing the tree kept under
/// `cache_dir` for the same text, and keeping it when there was none. A cache that cannot be
/// read or written only costs the parse.
pub(crate) fn parse_file(path: &Path, cache_dir: Option<&Path>) -> Result<LoadedSpec, SpecErrors> {
    let source = spec::read_source(path)?;
    let Some(cache_dir) = cache_dir else {
        return spec::parse_str(&source, path);
    };
    let kept = kept_tree(cache_dir, &source);
    if let Some(loaded) = std::fs::read_to_string(&kept)
        .ok()
        .and_then(|json| spec::from_tree_json(&json, &source, path).ok())
    {
        return Ok(loaded);
    }
    let tree = spec::parse_tree(&source, path)?;
    if let Err(error) = keep(&kept, &tree) {
        tracing::debug!(%error, file = %kept.display(), "cannot keep the parsed agent");
    }
    Ok(spec::from_tree(tree, &source, path))
}

fn kept_tree(cache_dir: &Path, source: &str) -> PathBuf {
    let mut hash = Sha256::new();
    hash.update(spec::TREE_FORMAT.as_bytes());
    hash.update([0]);
    hash.update(source.as_bytes());
    cache_dir
        .join(FOLDER)
        .join(format!("{}.json", hex::encode(hash.finalize())))
}

/// Writes the tree beside its final name and renames it there, so that a reader never sees
/// half a file; then trims the folder to its [`KEPT`] newest trees. A tree whose JSON does not
/// read back as itself is not kept.
fn keep(kept: &Path, tree: &serde_json::Value) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let folder = kept.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    let partial = kept.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let bytes = serde_json::to_vec(tree)?;
    // serde_json may read a float back one unit in the last place off: such a tree is not
    // kept, so that a kept tree is always exactly the parse.
    if serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .as_ref()
        != Some(tree)
    {
        return Ok(());
    }
    if let Err(error) =
        write_private(&partial, &bytes).and_then(|()| std::fs::rename(&partial, kept))
    {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    trim(folder)
}

/// The tree holds all the agent file says, secrets written in it included: only its owner
/// may read it.
#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// How many parsed agents are kept: each edit of a file is a new tree.
const KEPT: usize = 256;

fn trim(folder: &Path) -> std::io::Result<()> {
    let mut trees: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(folder)?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "json"))
        .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
        .collect();
    if trees.len() <= KEPT {
        return Ok(());
    }
    trees.sort();
    for (_, oldest) in &trees[..trees.len() - KEPT] {
        // Another process may have removed it first.
        let _ = std::fs::remove_file(oldest);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AGENT: &str = "name: kept\nnodes:\n  - name: a\n    run:\n      type: expression\n      value: state[\"n\"] + 1\n      output_key: n\nvariables:\n  mode: 0755\n  flag: yes\n  ratio: 1.50\n";

    fn agent_file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("agent.yaml");
        std::fs::write(&path, text).expect("agent file");
        path
    }

    #[test]
    fn a_kept_tree_loads_the_same_spec_as_a_fresh_parse() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = dir.path().join("cache");
        let path = agent_file(dir.path(), AGENT);
        let fresh = spec::parse_file(&path).expect("parses");
        let first = parse_file(&path, Some(&cache)).expect("parses and keeps");
        let kept = kept_tree(&cache, AGENT);
        assert!(kept.is_file(), "the tree is kept at {}", kept.display());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&kept).expect("kept").permissions().mode();
            assert_eq!(mode & 0o077, 0, "only its owner reads it: {mode:o}");
        }
        let second = parse_file(&path, Some(&cache)).expect("loads the kept tree");
        for loaded in [&first, &second] {
            assert_eq!(format!("{:?}", loaded.spec), format!("{:?}", fresh.spec));
        }
        assert_eq!(second.spec.variables["mode"], serde_json::json!("0755"));
        assert_eq!(second.spec.variables["flag"], serde_json::json!("yes"));
    }

    #[test]
    fn the_kept_tree_is_the_one_used_and_a_changed_file_is_parsed_again() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = dir.path().join("cache");
        let path = agent_file(dir.path(), AGENT);
        parse_file(&path, Some(&cache)).expect("keeps");
        // Proof that a hit reads the kept tree, not the YAML: a different tree under the name.
        let kept = kept_tree(&cache, AGENT);
        let mut tree: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&kept).expect("kept")).expect("json");
        tree["name"] = serde_json::json!("from-the-cache");
        std::fs::write(&kept, tree.to_string()).expect("rewrite");
        let hit = parse_file(&path, Some(&cache)).expect("hit");
        assert_eq!(hit.spec.name, "from-the-cache");
        let changed = AGENT.replace("name: kept", "name: changed");
        std::fs::write(&path, &changed).expect("edit");
        let miss = parse_file(&path, Some(&cache)).expect("parsed again");
        assert_eq!(miss.spec.name, "changed");
    }

    #[test]
    fn a_broken_kept_tree_is_parsed_again_and_yaml_errors_are_not_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = dir.path().join("cache");
        let path = agent_file(dir.path(), AGENT);
        let kept = kept_tree(&cache, AGENT);
        std::fs::create_dir_all(kept.parent().expect("folder")).expect("folder");
        std::fs::write(&kept, b"{ half a tr").expect("broken");
        let loaded = parse_file(&path, Some(&cache)).expect("parsed again");
        assert_eq!(loaded.spec.name, "kept");
        let broken = "nodes: [\n";
        let path = agent_file(dir.path(), broken);
        let errors = parse_file(&path, Some(&cache)).expect_err("not YAML");
        assert!(errors.0[0].line > 0, "{errors:?}");
        assert!(!kept_tree(&cache, broken).exists());
    }

    #[test]
    fn the_folder_keeps_only_the_newest_trees() {
        let dir = tempfile::tempdir().expect("dir");
        let cache = dir.path().join("cache");
        let path = dir.path().join("agent.yaml");
        for i in 0..KEPT + 3 {
            std::fs::write(&path, AGENT.replace("name: kept", &format!("name: v{i}")))
                .expect("edit");
            parse_file(&path, Some(&cache)).expect("parses");
        }
        let trees = std::fs::read_dir(cache.join(FOLDER))
            .expect("folder")
            .count();
        assert_eq!(trees, KEPT);
    }
}
