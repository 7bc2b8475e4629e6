//! JavaScript node folders: the node's ES modules and the `kettle` SDK bundled into one module
//! by rolldown, then componentize-js (StarlingMonkey) over it. Without the `http` grant the
//! component is built with fetch disabled, so that it imports no `wasi:http`.

use super::support::{JS_SDK, WIT, materialize};
use super::{BuildError, BuildOptions, Toolchains, shell_line, tool_output};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// Entry files tried, in order, when package.json names none.
const ENTRIES: &[&str] = &["app.js", "index.js", "main.js", "app.mjs", "index.mjs"];

pub fn has_js_files(dir: &Path) -> bool {
    js_files(dir).next().is_some()
}

fn js_files(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "js" || e == "mjs"))
}

pub async fn build(
    dir: &Path,
    work: &Path,
    options: &BuildOptions,
    toolchains: &Toolchains,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<PathBuf, BuildError> {
    let entry = entry_file(dir)?;
    toolchains.ensure_js(progress).await?;
    let io = |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    let support = toolchains.support_dir();
    let wit = materialize(&support, "wit", WIT).map_err(io)?;
    let sdk = materialize(&support, "js-sdk", JS_SDK).map_err(io)?;
    std::fs::create_dir_all(work).map_err(io)?;
    let bundle = bundle(dir, work, &entry, &sdk, options, toolchains).await?;
    componentize(dir, work, &bundle, &wit, options, toolchains).await
}

/// A path as a JavaScript string literal.
fn js_string(path: &Path) -> String {
    serde_json::Value::from(path.to_string_lossy()).to_string()
}

/// Bundles the node's `entry` with the SDK into one ES module (`work/bundle.js`) with rolldown.
async fn bundle(
    dir: &Path,
    work: &Path,
    entry: &Path,
    sdk: &Path,
    options: &BuildOptions,
    toolchains: &Toolchains,
) -> Result<PathBuf, BuildError> {
    let io = |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    // The bundle's entry: the SDK's fetch refusal (without `http`) first, then the node.
    let main = work.join("main.js");
    let mut text = String::from("// Written by kettle build.\n");
    if !options.http {
        text.push_str(&format!(
            "import {};\n",
            js_string(&sdk.join("no-fetch.js"))
        ));
    }
    text.push_str(&format!("export * from {};\n", js_string(entry)));
    std::fs::write(&main, text).map_err(io)?;
    let bundle = work.join("bundle.js");
    let config = work.join("rolldown.config.mjs");
    std::fs::write(
        &config,
        format!(
            "// Written by kettle build: bundles the node with the kettle SDK; the host's WIT\n\
             // interfaces stay imports of the component.\n\
             export default {{\n  input: {},\n  external: [/^kettle:/, /^wasi:/],\n  \
             resolve: {{ alias: {{ kettle: {} }} }},\n  \
             output: {{ file: {}, format: \"esm\", inlineDynamicImports: true }},\n  logLevel: \"warn\",\n}};\n",
            js_string(&main),
            js_string(&sdk.join("kettle.js")),
            js_string(&bundle),
        ),
    )
    .map_err(io)?;
    let args = vec!["-c".to_string(), config.to_string_lossy().into_owned()];
    run(dir, &toolchains.rolldown(), &args).await?;
    Ok(bundle)
}

/// Turns the bundle into a component of the `node` world (`work/node.wasm`) with
/// componentize-js.
async fn componentize(
    dir: &Path,
    work: &Path,
    bundle: &Path,
    wit: &Path,
    options: &BuildOptions,
    toolchains: &Toolchains,
) -> Result<PathBuf, BuildError> {
    let out = work.join("node.wasm");
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut args = vec![
        path(bundle),
        "--wit".into(),
        path(wit),
        "--world-name".into(),
        "node".into(),
    ];
    if !options.http {
        // fetch needs wasi:http, which the host links only for nodes granted `http`.
        args.extend(["--disable".into(), "http".into(), "fetch-event".into()]);
    }
    args.extend(["-o".into(), path(&out)]);
    run(dir, &toolchains.componentize_js(), &args).await?;
    if !out.is_file() {
        return Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            output: "componentize-js reported success but wrote no component".into(),
            command: shell_line(&toolchains.componentize_js(), &args),
        });
    }
    Ok(out)
}

async fn run(dir: &Path, program: &Path, args: &[String]) -> Result<(), BuildError> {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| BuildError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed {
            dir: dir.to_path_buf(),
            output: tool_output(&output),
            command: shell_line(program, args),
        })
    }
}

/// package.json's `main`, else the first of [`ENTRIES`], else the folder's only `.js` file.
fn entry_file(dir: &Path) -> Result<PathBuf, BuildError> {
    let no_entry = |message: String| {
        BuildError::NoEntry {
        dir: dir.to_path_buf(),
        message,
        hint: "name the module that exports `run` in package.json (`\"main\": \"app.js\"`), or call it app.js".into(),
    }
    };
    if let Ok(text) = std::fs::read_to_string(dir.join("package.json")) {
        let manifest: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| no_entry(format!("package.json is not JSON: {e}")))?;
        if let Some(main) = manifest["main"].as_str() {
            let path = dir.join(main);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(no_entry(format!(
                    "package.json names `main: {main}`, which does not exist"
                )))
            };
        }
    }
    if let Some(path) = ENTRIES.iter().map(|e| dir.join(e)).find(|p| p.is_file()) {
        return Ok(path);
    }
    let mut files: Vec<PathBuf> = js_files(dir).collect();
    match files.len() {
        1 => Ok(files.remove(0)),
        0 => Err(no_entry("no .js file".into())),
        _ => Err(no_entry(format!(
            "{} .js files and none is app.js or index.js",
            files.len()
        ))),
    }
}
