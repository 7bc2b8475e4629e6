//! `kettle build`: builds one node folder, or every node folder an agent references, printing
//! one line per node.

use super::args::BuildArgs;
use super::{EXIT_BAD_INPUT, EXIT_OK, EXIT_RUN_FAILED, Threads, block_on, cache_dir};
use kettle::graph::ComponentSource;
use kettle_build::{BuildOptions, Language, SourceVerdict, build_node, python_source};
use std::path::{Path, PathBuf};

pub fn build(args: BuildArgs) -> u8 {
    block_on(Threads::One, build_async(args))
}

async fn build_async(args: BuildArgs) -> u8 {
    let folders = match node_folders(&args.path) {
        Ok(folders) => folders,
        Err(message) => {
            eprintln!("kettle: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    if folders.is_empty() {
        eprintln!(
            "kettle: {} has no node folder to build (its components are .wasm files or built-in actions)",
            args.path.display()
        );
        return EXIT_OK;
    }
    let cache = cache_dir();
    let progress = |line: &str| eprintln!("kettle: {line}…");
    for (node, dir) in folders {
        let label = node.map_or_else(|| dir.display().to_string(), |n| format!("node `{n}`"));
        if !args.precompile && Language::detect(&dir) == Some(Language::Python) {
            match python_source(&dir) {
                Ok(SourceVerdict::Runs(_)) => {
                    eprintln!(
                        "kettle: {label} (python) needs no build: `kettle run` runs its source in the Python interpreter (`--precompile` builds its component)"
                    );
                    continue;
                }
                Ok(SourceVerdict::Build(_)) => {}
                Err(e) => {
                    eprintln!("kettle: {label}: {e}");
                    return EXIT_RUN_FAILED;
                }
            }
        }
        match build_node(&dir, &cache, &BuildOptions::default(), &progress).await {
            Ok(outcome) if outcome.built => eprintln!(
                "kettle: built {label} ({}) in {:.1} s → {}",
                outcome.language.name(),
                outcome.took.as_secs_f64(),
                outcome.wasm.display()
            ),
            Ok(outcome) => eprintln!(
                "kettle: {label} ({}) is up to date → {}",
                outcome.language.name(),
                outcome.wasm.display()
            ),
            Err(e) => {
                eprintln!("kettle: {label}: {e}");
                return EXIT_RUN_FAILED;
            }
        }
    }
    EXIT_OK
}

/// The folders to build, with the node name when they come from an agent file.
fn node_folders(path: &Path) -> Result<Vec<(Option<String>, PathBuf)>, String> {
    if path.is_dir() {
        if Language::detect(path).is_none() {
            return Err(format!(
                "{} is not a node folder: it has no Cargo.toml (Rust), app.py or pyproject.toml (Python), package.json or .js file (JavaScript)\n  hint: give a node folder, or an agent file to build all its nodes",
                path.display()
            ));
        }
        return Ok(vec![(None, path.to_path_buf())]);
    }
    if !path.is_file() {
        return Err(format!(
            "{} does not exist\n  hint: give a node folder, or an agent file (agent.yaml) to build all its nodes",
            path.display()
        ));
    }
    let (_, graph) = kettle::engine::load_checked(path).map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    Ok(graph
        .components()
        .filter_map(|(_, node, source)| match source {
            ComponentSource::Folder(dir) if seen.insert(dir.clone()) => {
                Some((Some(node.to_string()), dir.clone()))
            }
            _ => None,
        })
        .collect())
}
