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
    if args.precompile && !kettle::sandbox::HAS_COMPILER && !args.path.is_dir() {
        return precompile(&args).await;
    }
    let code = build_folders(&args).await;
    if code != EXIT_OK || !args.precompile {
        return code;
    }
    if args.path.is_dir() {
        if args.target.is_some() || args.out.is_some() {
            eprintln!(
                "kettle: --target and --out precompile an agent's components: give the agent file (agent.yaml), not a node folder"
            );
            return EXIT_BAD_INPUT;
        }
        return code;
    }
    precompile(&args).await
}

/// Compiles every component of the agent ahead of time, printing one line per component.
#[cfg(feature = "compiler")]
async fn precompile(args: &BuildArgs) -> u8 {
    use kettle::engine::{PrecompileError, PrecompileOptions, precompile_agent};
    let options = PrecompileOptions {
        target: args.target.clone(),
        out: args.out.clone(),
    };
    let events = |event: kettle::engine::ComponentEvent| {
        eprintln!("kettle: {}", super::summary::component_event(&event));
    };
    match precompile_agent(&args.path, &options, &cache_dir(), &events).await {
        Ok(report) => {
            let target = &report.manifest.target;
            for (entry, took) in report.manifest.components.iter().zip(&report.took) {
                let nodes = entry
                    .nodes
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                eprintln!(
                    "kettle: precompiled {} (node {nodes}) for {target} in {:.1} s → {}",
                    entry.source,
                    took.as_secs_f64(),
                    entry.cwasm
                );
            }
            eprintln!(
                "kettle: wrote {} ({} component{}, wasmtime {})",
                report.dir.join(kettle::sandbox::MANIFEST_FILE).display(),
                report.manifest.components.len(),
                if report.manifest.components.len() == 1 {
                    ""
                } else {
                    "s"
                },
                report.manifest.wasmtime
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("kettle: {e}");
            match e {
                PrecompileError::Spec(_) | PrecompileError::Target { .. } => EXIT_BAD_INPUT,
                _ => EXIT_RUN_FAILED,
            }
        }
    }
}

/// A runtime-only kettle has no compiler: it says where to precompile instead.
#[cfg(not(feature = "compiler"))]
async fn precompile(args: &BuildArgs) -> u8 {
    eprintln!(
        "kettle: this kettle is a runtime-only build, without Cranelift: it cannot precompile\n  hint: with a full kettle, run `kettle build --precompile {} --target {}`, then copy the agent's folder with its .kettle/precompiled/ here",
        args.path.display(),
        kettle::sandbox::host_target()
    );
    EXIT_BAD_INPUT
}

/// Builds the node folder, or every node folder of the agent file.
async fn build_folders(args: &BuildArgs) -> u8 {
    let folders = match node_folders(&args.path) {
        Ok(folders) => folders,
        Err(message) => {
            eprintln!("kettle: {message}");
            return EXIT_BAD_INPUT;
        }
    };
    if folders.is_empty() && args.precompile {
        return EXIT_OK;
    }
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
