//! `cold_start`: what starting a node costs, for the same node logic (tests/nodes/mirror and
//! tests/polyglot-nodes/mirror-*) in Rust, Python and JavaScript:
//! - `first_run`: a whole `kettle run` whose component is built but not yet compiled;
//! - `second_run`: the same run again, the component loaded from the compile cache;
//! - `instantiate_call`: one fresh instance and one call of `run`, in process, as the engine
//!   does it for every node execution.
//!
//! Toolchains are installed (once) into the target folder, as the tests do.

#[path = "../../runtime/benches/support/mod.rs"]
mod support;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kettle::sandbox::{CompileCache, Sandbox, SandboxConfig};
use kettle_build::{BuildOptions, build_node};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const STATE: &str = r#"{"topic": "tea", "items": ["cups"]}"#;

struct Node {
    language: &'static str,
    dir: PathBuf,
}

fn nodes() -> Vec<Node> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    vec![
        Node {
            language: "rust",
            dir: repo.join("tests/nodes/mirror"),
        },
        Node {
            language: "python",
            dir: repo.join("tests/polyglot-nodes/mirror-py"),
        },
        Node {
            language: "javascript",
            dir: repo.join("tests/polyglot-nodes/mirror-js"),
        },
    ]
}

/// `kettle run AGENT` with `cache` as its cache; asserts success.
fn kettle_run(agent: &Path, cache: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_kettle"))
        .arg("run")
        .arg(agent)
        .args(["--no-trace", "--quiet", "--input", STATE])
        .env("KETTLE_CACHE_DIR", cache)
        .env("KETTLE_TOOLCHAINS_DIR", support::toolchains_dir())
        .output()
        .expect("kettle runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Copies the `builds/` folder of `from` into a fresh cache: built, not compiled.
fn built_only(from: &Path) -> tempfile::TempDir {
    let cache = tempfile::tempdir().expect("cache dir");
    let builds = cache.path().join("builds");
    std::fs::create_dir_all(&builds).expect("builds dir");
    for entry in std::fs::read_dir(from.join("builds")).expect("builds") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, builds.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    cache
}

fn cold_start(c: &mut Criterion) {
    support::use_shared_toolchains();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let work = tempfile::tempdir().expect("work dir");
    let run = support::NodeRun::new();

    let mut group = c.benchmark_group("cold_start");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for node in nodes() {
        let language = node.language;
        let cache = work.path().join(format!("cache-{language}"));
        let agent = work.path().join(format!("{language}.yaml"));
        std::fs::write(
            &agent,
            format!(
                "name: mirror\nnodes:\n  - name: mirror\n    component: {}\n",
                node.dir.display()
            ),
        )
        .expect("agent file");
        // Builds, compiles and runs once: the caches below start from here.
        kettle_run(&agent, &cache);

        group.bench_function(format!("first_run/{language}"), |b| {
            b.iter_batched(
                || built_only(&cache),
                |fresh| kettle_run(&agent, fresh.path()),
                BatchSize::PerIteration,
            );
        });
        group.bench_function(format!("second_run/{language}"), |b| {
            b.iter(|| kettle_run(&agent, &cache));
        });

        let built = runtime
            .block_on(build_node(
                &node.dir,
                &cache,
                &BuildOptions::default(),
                &|line| eprintln!("{line}"),
            ))
            .expect("the node builds");
        let sandbox =
            Sandbox::new(&SandboxConfig::default(), CompileCache::new(&cache)).expect("sandbox");
        let component = sandbox.prepare(&built.wasm).expect("the node compiles");
        group.bench_function(format!("instantiate_call/{language}"), |b| {
            b.iter(|| {
                let update = run.execute(&runtime, &sandbox, &component, "mirror", STATE.into());
                assert!(update.contains("[mock] Review cups"));
                update
            });
        });
    }
    group.finish();
}

criterion_group!(benches, cold_start);
criterion_main!(benches);
