//! The toolchains that build nodes, installed on first use at pinned versions into Kettle's
//! cache: the Rust target (`rustup target add`), a private venv with componentize-py, and a
//! private npm prefix with componentize-js and the rolldown bundler. Installs take a file lock,
//! so that concurrent builds (parallel tests on a fresh machine) install once.

use super::{BuildError, rustc_version, shell_line, tool_output};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// componentize-py on PyPI. 0.25 emits WASI 0.2 imports that wasmtime 48 links.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// @bytecodealliance/componentize-js on npm (StarlingMonkey), WASI 0.2 imports.
pub const COMPONENTIZE_JS: &str = "0.19.3";
/// rolldown on npm: bundles a node's ES modules with the `kettle` SDK module.
pub const ROLLDOWN: &str = "1.3.2";
pub const RUST_TARGET: &str = "wasm32-wasip2";

/// Written into an install folder once the install succeeded, with the version installed.
const MARKER: &str = ".kettle-installed";

/// The toolchains folder: `$KETTLE_TOOLCHAINS_DIR`, else `{cache}/toolchains`.
#[derive(Debug, Clone)]
pub struct Toolchains {
    dir: PathBuf,
}

/// One line of `kettle doctor`.
#[derive(Debug, Clone)]
pub struct ToolStatus {
    pub name: &'static str,
    /// What is installed (a version), or None when it is missing.
    pub installed: Option<String>,
    pub location: Option<PathBuf>,
    /// What happens, or what to do, when it is missing.
    pub when_missing: String,
}

impl Toolchains {
    pub fn for_cache(cache_dir: &Path) -> Self {
        let dir = std::env::var_os("KETTLE_TOOLCHAINS_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| cache_dir.join("toolchains"), PathBuf::from);
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn venv(&self) -> PathBuf {
        self.dir.join("python")
    }

    fn npm_prefix(&self) -> PathBuf {
        self.dir.join("js")
    }

    pub fn componentize_py(&self) -> PathBuf {
        self.venv().join("bin/componentize-py")
    }

    pub fn componentize_js(&self) -> PathBuf {
        self.npm_prefix().join("node_modules/.bin/componentize-js")
    }

    pub fn rolldown(&self) -> PathBuf {
        self.npm_prefix().join("node_modules/.bin/rolldown")
    }

    /// The embedded WIT and SDK files are written here.
    pub fn support_dir(&self) -> PathBuf {
        self.dir.join("support")
    }

    /// `rustc --version` ("unknown" when rustc does not answer): once per process, and
    /// remembered across processes while the compiler it names cannot have changed
    /// (see [`super::rustc_version`]).
    pub async fn rustc_version(&self) -> String {
        static VERSION: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        VERSION
            .get_or_init(|| async {
                let key = rustc_version::Probe::from_env().key();
                if let Some(version) = rustc_version::remembered(&self.dir, &key) {
                    return version;
                }
                match version_of("rustc", &["--version"]).await {
                    Some(version) => {
                        rustc_version::remember(&self.dir, &key, &version);
                        version
                    }
                    None => "unknown".into(),
                }
            })
            .await
            .clone()
    }

    /// Installs the Rust target for components, once.
    pub async fn ensure_rust_target(
        &self,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), BuildError> {
        if rust_target_installed().await {
            return Ok(());
        }
        let command = format!("rustup target add {RUST_TARGET}");
        progress(&format!(
            "installing the Rust target {RUST_TARGET}, once ({command})"
        ));
        let mut last_error = String::new();
        // Several builds may race to install it: a failed attempt is retried, and succeeds as
        // soon as the target is there, whoever installed it.
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            match Command::new("rustup")
                .args(["target", "add", RUST_TARGET])
                .stdin(Stdio::null())
                .output()
                .await
            {
                Ok(out) if out.status.success() => return Ok(()),
                Ok(out) => last_error = tool_output(&out),
                Err(e) => last_error = format!("cannot run rustup: {e}"),
            }
            if rust_target_installed().await {
                return Ok(());
            }
        }
        Err(BuildError::Toolchain {
            what: format!("the Rust target {RUST_TARGET}"),
            output: last_error,
            command,
        })
    }

    /// Installs componentize-py into the private venv, once; returns its path.
    pub async fn ensure_python(
        &self,
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<PathBuf, BuildError> {
        let venv = self.venv();
        let python = venv.join("bin/python");
        let steps = vec![
            (
                PathBuf::from("python3"),
                vec![
                    "-m".into(),
                    "venv".into(),
                    venv.to_string_lossy().into_owned(),
                ],
            ),
            (
                python,
                vec![
                    "-m".into(),
                    "pip".into(),
                    "install".into(),
                    "--disable-pip-version-check".into(),
                    "--no-input".into(),
                    "--quiet".into(),
                    format!("componentize-py=={COMPONENTIZE_PY}"),
                ],
            ),
        ];
        self.install(
            &format!("componentize-py {COMPONENTIZE_PY}"),
            &venv,
            COMPONENTIZE_PY,
            &steps,
            progress,
        )
        .await?;
        Ok(self.componentize_py())
    }

    /// Installs componentize-js and rolldown into the private npm prefix, once.
    pub async fn ensure_js(&self, progress: &(dyn Fn(&str) + Sync)) -> Result<(), BuildError> {
        let prefix = self.npm_prefix();
        let steps = vec![(
            PathBuf::from("npm"),
            vec![
                "install".into(),
                "--prefix".into(),
                prefix.to_string_lossy().into_owned(),
                "--no-audit".into(),
                "--no-fund".into(),
                "--loglevel=error".into(),
                format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"),
                format!("rolldown@{ROLLDOWN}"),
            ],
        )];
        let version = format!("{COMPONENTIZE_JS}+rolldown-{ROLLDOWN}");
        self.install(
            &format!("componentize-js {COMPONENTIZE_JS}"),
            &prefix,
            &version,
            &steps,
            progress,
        )
        .await
    }

    /// Runs `steps` into `target` unless its marker says `version` is installed.
    async fn install(
        &self,
        what: &str,
        target: &Path,
        version: &str,
        steps: &[(PathBuf, Vec<String>)],
        progress: &(dyn Fn(&str) + Sync),
    ) -> Result<(), BuildError> {
        let installed = || installed_version(target).as_deref() == Some(version);
        if installed() {
            return Ok(());
        }
        let command = steps
            .iter()
            .map(|(program, args)| shell_line(program, args))
            .collect::<Vec<_>>()
            .join(" && ");
        let fail = |output: String| BuildError::Toolchain {
            what: what.to_string(),
            output,
            command: command.clone(),
        };
        let _lock = lock(&self.dir, target)
            .await
            .map_err(|e| fail(format!("cannot lock {}: {e}", self.dir.display())))?;
        // Whoever held the lock before may have installed it.
        if installed() {
            return Ok(());
        }
        progress(&format!(
            "installing {what} into {}, once ({command})",
            target.display()
        ));
        if target.exists() {
            std::fs::remove_dir_all(target)
                .map_err(|e| fail(format!("cannot remove the unfinished install: {e}")))?;
        }
        std::fs::create_dir_all(target).map_err(|e| fail(e.to_string()))?;
        for (program, args) in steps {
            let output = Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| fail(format!("cannot run {}: {e}", program.display())))?;
            if !output.status.success() {
                return Err(fail(tool_output(&output)));
            }
        }
        std::fs::write(target.join(MARKER), version).map_err(|e| fail(e.to_string()))
    }

    /// What is installed, where, and what is missing.
    pub async fn status(&self) -> Vec<ToolStatus> {
        let on_path =
            |name: &'static str, version: Option<String>, when_missing: &str| ToolStatus {
                name,
                location: version.as_ref().and_then(|_| which(name)),
                installed: version,
                when_missing: when_missing.to_string(),
            };
        let target = rust_target_installed()
            .await
            .then(|| "installed".to_string());
        let py_version = installed_version(&self.venv());
        let js_version = installed_version(&self.npm_prefix());
        vec![
            on_path(
                "cargo",
                version_of("cargo", &["--version"]).await,
                "needed for Rust nodes: install Rust with rustup",
            ),
            ToolStatus {
                name: "wasm32-wasip2",
                installed: target,
                location: None,
                when_missing: format!(
                    "installed on the first Rust build (rustup target add {RUST_TARGET})"
                ),
            },
            on_path(
                "python3",
                version_of("python3", &["--version"]).await,
                "needed for Python nodes: install Python 3.9 or newer with venv and pip",
            ),
            ToolStatus {
                name: "componentize-py",
                installed: py_version
                    .filter(|v| v == COMPONENTIZE_PY)
                    .map(|v| v.to_string()),
                location: Some(self.componentize_py()),
                when_missing: format!(
                    "installed on the first Python build (componentize-py {COMPONENTIZE_PY} from PyPI), or now with `kettle doctor --install`"
                ),
            },
            on_path(
                "node",
                version_of("node", &["--version"]).await,
                "needed for JavaScript nodes: install Node.js 18 or newer with npm",
            ),
            on_path(
                "npm",
                version_of("npm", &["--version"]).await,
                "needed for JavaScript nodes: comes with Node.js",
            ),
            ToolStatus {
                name: "componentize-js",
                installed: js_version
                    .filter(|v| v.starts_with(COMPONENTIZE_JS))
                    .map(|_| format!("{COMPONENTIZE_JS} (rolldown {ROLLDOWN})")),
                location: Some(self.componentize_js()),
                when_missing: format!(
                    "installed on the first JavaScript build (@bytecodealliance/componentize-js {COMPONENTIZE_JS} from npm), or now with `kettle doctor --install`"
                ),
            },
        ]
    }
}

fn installed_version(target: &Path) -> Option<String> {
    std::fs::read_to_string(target.join(MARKER)).ok()
}

/// An exclusive lock on `{dir}/{name of target}.lock`, released when dropped.
async fn lock(dir: &Path, target: &Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let name = target
        .file_name()
        .map_or_else(|| "install".into(), |n| n.to_string_lossy().into_owned());
    let file = std::fs::File::create(dir.join(format!("{name}.lock")))?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(std::io::Error::other)?
}

async fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn which(program: &str) -> Option<PathBuf> {
    which_in(&std::env::var_os("PATH")?, program)
}

/// The first `program` file in the folders of the search path `path`.
pub(crate) fn which_in(path: &std::ffi::OsStr, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

async fn rust_target_installed() -> bool {
    match version_of("rustc", &["--print", "sysroot"]).await {
        Some(sysroot) => Path::new(&sysroot)
            .join("lib/rustlib")
            .join(RUST_TARGET)
            .is_dir(),
        None => false,
    }
}
