//! The interpreters of TEA's inline code: node folders compiled into `kettle` (so that an
//! installed binary needs no repository), written into Kettle's cache and built like any
//! node folder on first use. Adding a language is one entry in [`INTERPRETERS`].

use super::npm_wasm::{self, NpmWasm};
use super::support::materialize;
use super::trealla;
use super::{BuildError, BuildOptions, BuildOutcome, Toolchains, build_node};
use std::path::Path;

/// An interpreter component's source: a node folder whose `config.code` is the code it runs.
#[derive(Debug, Clone, Copy)]
pub struct Interpreter {
    /// The name of `language:` in TEA's YAML (`python`, `lua`).
    pub language: &'static str,
    /// The folder's files, relative path and text.
    pub files: &'static [(&'static str, &'static str)],
    /// A WebAssembly module the folder needs from npm before it builds (Prolog's Trealla).
    pub npm_wasm: Option<NpmWasm>,
    /// Whether the built component is composed with Trealla's engine component (made from
    /// `npm_wasm`, see trealla.rs) into the interpreter.
    pub trealla_engine: bool,
}

/// Every language inline code may be written in, and its interpreter's folder.
pub const INTERPRETERS: &[Interpreter] = &[
    Interpreter {
        language: "python",
        files: &[("app.py", include_str!("../../interpreters/python/app.py"))],
        npm_wasm: None,
        trealla_engine: false,
    },
    Interpreter {
        language: "lua",
        files: &[
            (
                "Cargo.toml",
                include_str!("../../interpreters/lua/Cargo.toml"),
            ),
            (
                "Cargo.lock",
                include_str!("../../interpreters/lua/Cargo.lock"),
            ),
            (
                "src/lib.rs",
                include_str!("../../interpreters/lua/src/lib.rs"),
            ),
            (
                "src/interpreter.rs",
                include_str!("../../interpreters/lua/src/interpreter.rs"),
            ),
            (
                "src/convert.rs",
                include_str!("../../interpreters/lua/src/convert.rs"),
            ),
            (
                "src/environment.rs",
                include_str!("../../interpreters/lua/src/environment.rs"),
            ),
            (
                "js-sys-shim/Cargo.toml",
                include_str!("../../interpreters/lua/js-sys-shim/Cargo.toml"),
            ),
            (
                "js-sys-shim/src/lib.rs",
                include_str!("../../interpreters/lua/js-sys-shim/src/lib.rs"),
            ),
            // The guest SDK it is written against, and the WIT the SDK binds.
            ("guest-sdk/Cargo.toml", GUEST_SDK_MANIFEST),
            (
                "guest-sdk/src/lib.rs",
                include_str!("../../guest-sdk/src/lib.rs"),
            ),
            (
                "guest-sdk/src/context.rs",
                include_str!("../../guest-sdk/src/context.rs"),
            ),
            (
                "guest-sdk/src/error.rs",
                include_str!("../../guest-sdk/src/error.rs"),
            ),
            (
                "guest-sdk/src/interrupt.rs",
                include_str!("../../guest-sdk/src/interrupt.rs"),
            ),
            (
                "guest-sdk/src/llm.rs",
                include_str!("../../guest-sdk/src/llm.rs"),
            ),
            (
                "guest-sdk/src/log.rs",
                include_str!("../../guest-sdk/src/log.rs"),
            ),
            (
                "guest-sdk/src/node.rs",
                include_str!("../../guest-sdk/src/node.rs"),
            ),
            (
                "guest-sdk/src/trace.rs",
                include_str!("../../guest-sdk/src/trace.rs"),
            ),
            ("wit/interrupt.wit", include_str!("../../wit/interrupt.wit")),
            ("wit/llm.wit", include_str!("../../wit/llm.wit")),
            ("wit/log.wit", include_str!("../../wit/log.wit")),
            ("wit/trace.wit", include_str!("../../wit/trace.wit")),
            ("wit/types.wit", include_str!("../../wit/types.wit")),
            ("wit/world.wit", include_str!("../../wit/world.wit")),
        ],
        npm_wasm: None,
        trealla_engine: false,
    },
    Interpreter {
        language: "prolog",
        files: &[
            (
                "Cargo.toml",
                include_str!("../../interpreters/prolog/Cargo.toml"),
            ),
            (
                "Cargo.lock",
                include_str!("../../interpreters/prolog/Cargo.lock"),
            ),
            (
                "engine.wit",
                include_str!("../../interpreters/prolog/engine.wit"),
            ),
            (
                "src/lib.rs",
                include_str!("../../interpreters/prolog/src/lib.rs"),
            ),
            (
                "src/interpreter.rs",
                include_str!("../../interpreters/prolog/src/interpreter.rs"),
            ),
            (
                "src/machine.rs",
                include_str!("../../interpreters/prolog/src/machine.rs"),
            ),
            (
                "src/clauses.rs",
                include_str!("../../interpreters/prolog/src/clauses.rs"),
            ),
            (
                "src/terms.rs",
                include_str!("../../interpreters/prolog/src/terms.rs"),
            ),
            (
                "src/driver.pl",
                include_str!("../../interpreters/prolog/src/driver.pl"),
            ),
            // The guest SDK it is written against, and the WIT the SDK binds.
            ("guest-sdk/Cargo.toml", GUEST_SDK_MANIFEST),
            (
                "guest-sdk/src/lib.rs",
                include_str!("../../guest-sdk/src/lib.rs"),
            ),
            (
                "guest-sdk/src/context.rs",
                include_str!("../../guest-sdk/src/context.rs"),
            ),
            (
                "guest-sdk/src/error.rs",
                include_str!("../../guest-sdk/src/error.rs"),
            ),
            (
                "guest-sdk/src/interrupt.rs",
                include_str!("../../guest-sdk/src/interrupt.rs"),
            ),
            (
                "guest-sdk/src/llm.rs",
                include_str!("../../guest-sdk/src/llm.rs"),
            ),
            (
                "guest-sdk/src/log.rs",
                include_str!("../../guest-sdk/src/log.rs"),
            ),
            (
                "guest-sdk/src/node.rs",
                include_str!("../../guest-sdk/src/node.rs"),
            ),
            (
                "guest-sdk/src/trace.rs",
                include_str!("../../guest-sdk/src/trace.rs"),
            ),
            ("wit/interrupt.wit", include_str!("../../wit/interrupt.wit")),
            ("wit/llm.wit", include_str!("../../wit/llm.wit")),
            ("wit/log.wit", include_str!("../../wit/log.wit")),
            ("wit/trace.wit", include_str!("../../wit/trace.wit")),
            ("wit/types.wit", include_str!("../../wit/types.wit")),
            ("wit/world.wit", include_str!("../../wit/world.wit")),
        ],
        npm_wasm: Some(TREALLA),
        trealla_engine: true,
    },
];

/// Trealla Prolog's WASI module, as npm's `trealla` (trealla-js) bundles it.
pub(crate) const TREALLA: NpmWasm = NpmWasm {
    package: "trealla",
    version: "0.17.10",
    bundle: "package/trealla.js",
    dest: "trealla/tpl.wasm",
    sha256: "5d6fcf41b960b9ce1b3bab65acf25f02b531c880c9dc31eab8c58409caf7cf60",
};

/// The guest SDK's manifest outside the repository's workspace (the repository's inherits its
/// version and dependencies from the workspace; `interpreter_folders_are_complete` checks they
/// agree).
const GUEST_SDK_MANIFEST: &str = r#"[package]
name = "kettle-guest"
version = "0.1.0"
edition = "2024"
license = "Apache-2.0"

[dependencies]
serde = { version = "1", features = ["derive"] }
serde_json = "1"
wit-bindgen = "0.60"
"#;

/// In the repository, interpreter folders reach the guest SDK at `../../guest-sdk`; in the
/// folder written into the cache it sits inside them.
fn relocate(name: &str, text: &'static str) -> std::borrow::Cow<'static, str> {
    if name == "Cargo.toml" {
        text.replace("path = \"../../guest-sdk\"", "path = \"guest-sdk\"")
            .into()
    } else {
        text.into()
    }
}

/// The interpreter of `language`, if Kettle has one.
pub fn interpreter(language: &str) -> Option<&'static Interpreter> {
    INTERPRETERS.iter().find(|i| i.language == language)
}

/// Writes the interpreter's folder into the cache (once per version of its source) and builds
/// it unless its last build is up to date.
pub async fn build_interpreter(
    interpreter: &Interpreter,
    cache_dir: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<BuildOutcome, BuildError> {
    let support = Toolchains::for_cache(cache_dir).support_dir();
    let relocated: Vec<(&str, std::borrow::Cow<'static, str>)> = interpreter
        .files
        .iter()
        .map(|(name, text)| (*name, relocate(name, text)))
        .collect();
    let files: Vec<(&str, &str)> = relocated
        .iter()
        .map(|(name, text)| (*name, text.as_ref()))
        .collect();
    let dir = materialize(
        &support,
        &format!("interpreter-{}", interpreter.language),
        &files,
    )
    .map_err(|source| BuildError::Io {
        dir: support.clone(),
        source,
    })?;
    if let Some(wasm) = &interpreter.npm_wasm {
        npm_wasm::ensure(wasm, &dir, &support, progress).await?;
    }
    let glue = build_node(&dir, cache_dir, &BuildOptions::default(), progress).await?;
    match interpreter.npm_wasm {
        Some(tpl) if interpreter.trealla_engine => {
            trealla::with_engine(glue, &dir.join(tpl.dest), tpl.sha256)
        }
        _ => Ok(glue),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of a repository interpreter folder (and of the guest SDK and WIT it builds
    /// against) is compiled in, so the folder written into the cache builds as the repository's.
    #[test]
    fn interpreter_folders_are_complete() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let listed = |language: &str| -> Vec<&str> {
            interpreter(language)
                .map(|i| i.files.iter().map(|(name, _)| *name).collect())
                .unwrap_or_default()
        };
        for (language, folders) in [
            (
                "lua",
                &[
                    ("interpreters/lua/src", "src"),
                    ("interpreters/lua/js-sys-shim/src", "js-sys-shim/src"),
                ][..],
            ),
            ("prolog", &[("interpreters/prolog/src", "src")][..]),
        ] {
            let files = listed(language);
            let mut expected = Vec::new();
            for (folder, prefix) in folders
                .iter()
                .chain(&[("guest-sdk/src", "guest-sdk/src"), ("wit", "wit")])
            {
                for entry in std::fs::read_dir(repo.join(folder)).expect("folder") {
                    let name = entry.expect("entry").file_name();
                    expected.push(format!("{prefix}/{}", name.to_string_lossy()));
                }
            }
            for file in &expected {
                assert!(
                    files.contains(&file.as_str()),
                    "{file} is not compiled into the {language} interpreter"
                );
            }
        }
        let workspace = std::fs::read_to_string(repo.join("Cargo.toml")).expect("Cargo.toml");
        for dependency in [
            "serde = { version = \"1\", features = [\"derive\"] }",
            "serde_json = \"1\"",
            "wit-bindgen = \"0.60\"",
        ] {
            assert!(
                workspace.contains(dependency),
                "the workspace's `{dependency}` changed: update GUEST_SDK_MANIFEST"
            );
            assert!(GUEST_SDK_MANIFEST.contains(dependency));
        }
        assert!(
            relocate(
                "Cargo.toml",
                include_str!("../../interpreters/lua/Cargo.toml")
            )
            .contains("path = \"guest-sdk\""),
            "the Lua interpreter finds the guest SDK inside its folder"
        );
    }
}
