//! Debian packages a test needs (Chromium and its driver for the page test): installed with
//! apt-get the first time a test asks, once per test process, so that `cargo test --workspace`
//! on a fresh Debian machine installs what it uses.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

static INSTALLING: Mutex<()> = Mutex::new(());

/// Makes sure `program` exists, installing `packages` if it does not; panics saying what to
/// install when that is impossible (no apt-get, not root).
pub fn ensure(program: &str, packages: &[&str]) {
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if Path::new(program).exists() {
        return;
    }
    let install = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(packages);
    let installed = install(&args) || (install(&["update", "-q"]) && install(&args));
    assert!(
        installed && Path::new(program).exists(),
        "this test needs {program}: install the Debian packages {} (as root: apt-get install {})",
        packages.join(", "),
        packages.join(" ")
    );
}
