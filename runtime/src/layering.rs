//! The crate's layering, checked: each top-level module may use only the modules below it, so
//! that `spec` stays a pure leaf and nothing reaches back up into the engine. A test reads the
//! sources and fails on any `crate::` path that points upwards, naming the file and line.

/// The layers, bottom first. A module may use the modules listed before it.
const LAYERS: &[&str] = &[
    "redact",
    "spec",
    "graph",
    "llm",
    "checkpoint",
    "telemetry",
    "capabilities",
    "sandbox",
    "engine",
];

/// The modules a `crate::…` path in `line` names (`crate::a::b`, `crate::{a, b::{c, d}}`).
fn crate_paths(line: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first name of every item at the group's top level.
            let mut depth = 0;
            let mut item_start = Some(0);
            for (i, c) in group.char_indices() {
                if let Some(start) = item_start.take() {
                    let name = leading_name(group[start..].trim_start());
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = Some(i + 1),
                    _ => {}
                }
            }
        } else {
            found.push(leading_name(rest));
        }
    }
    found
}

/// The identifier `text` starts with.
fn leading_name(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::{LAYERS, crate_paths};
    use std::path::{Path, PathBuf};

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).expect("readable source folder");
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn reads_crate_paths() {
        assert_eq!(crate_paths("use crate::spec::LimitsSpec;"), ["spec"]);
        assert_eq!(
            crate_paths("use crate::{graph, spec::{self, X}};"),
            ["graph", "spec"]
        );
        assert_eq!(
            crate_paths("let x = crate::llm::a(crate::spec::B);"),
            ["llm", "spec"]
        );
    }

    #[test]
    fn no_module_uses_a_higher_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut violations = Vec::new();
        for (rank, module) in LAYERS.iter().enumerate() {
            let mut files = Vec::new();
            let folder = src.join(module);
            if folder.is_dir() {
                rust_files(&folder, &mut files);
            }
            let file = src.join(format!("{module}.rs"));
            if file.is_file() {
                files.push(file);
            }
            assert!(!files.is_empty(), "layer `{module}` has no sources");
            for file in files {
                let text = std::fs::read_to_string(&file).expect("readable source");
                for (number, line) in text.lines().enumerate() {
                    if line.trim_start().starts_with("//") {
                        continue;
                    }
                    for used in crate_paths(line) {
                        if used == *module {
                            continue;
                        }
                        match LAYERS.iter().position(|l| *l == used) {
                            Some(used_rank) if used_rank < rank => {}
                            Some(_) => violations.push(format!(
                                "{}:{}: `{module}` uses `{used}`, a higher layer",
                                file.display(),
                                number + 1
                            )),
                            None => violations.push(format!(
                                "{}:{}: `{module}` uses `crate::{used}`, which is in no layer: add it to LAYERS",
                                file.display(),
                                number + 1
                            )),
                        }
                    }
                }
            }
        }
        assert!(
            violations.is_empty(),
            "layering broken (bottom first: {}):\n{}",
            LAYERS.join(" → "),
            violations.join("\n")
        );
    }

    #[test]
    fn every_top_level_module_is_in_a_layer() {
        let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
            .expect("lib.rs");
        for line in lib.lines() {
            if let Some(name) = line.trim().strip_prefix("pub mod ") {
                let name = name.trim_end_matches(';');
                assert!(
                    LAYERS.contains(&name),
                    "module `{name}` is in no layer: add it to LAYERS in layering.rs"
                );
            }
        }
    }

    #[test]
    fn the_library_does_not_depend_on_the_command_line() {
        let manifest =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
                .expect("Cargo.toml");
        for crate_name in ["clap", "tracing-subscriber", "mimalloc ="] {
            let in_dependencies = manifest
                .split("[dev-dependencies]")
                .next()
                .is_some_and(|deps| deps.lines().any(|l| l.starts_with(crate_name)));
            assert!(
                !in_dependencies,
                "the kettle library depends on `{crate_name}`: that belongs to kettle-cli"
            );
        }
    }
}
