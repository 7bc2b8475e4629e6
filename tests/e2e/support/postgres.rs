//! A real Postgres server for a test: Debian's `postgresql` (installed with apt-get the first
//! time, see `debian.rs`), a fresh cluster made with `initdb` in a temporary folder, listening
//! on 127.0.0.1 on a free port (and on a Unix socket in that folder), stopped when dropped.
//! Postgres refuses to run as root, so as root the server runs as the `postgres` system user
//! the Debian package creates. Also compiled into the runtime's unit tests (the checkpoint
//! store suite) with `#[path]`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The role every test connects as (trust authentication: no password).
const USER: &str = "kettle";

pub struct PostgresServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The newest server installed under /usr/lib/postgresql/NN/bin.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

fn check(what: &str, output: std::io::Result<Output>) {
    let output = output.unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PostgresServer {
    /// Installs Postgres if needed, makes a cluster and starts it.
    pub fn start() -> Self {
        if server_bin().is_none() {
            super::debian::ensure("/usr/bin/pg_ctlcluster", &["postgresql"]);
        }
        let bin = server_bin().expect(
            "this test needs a Postgres server: install the Debian package postgresql (apt-get install postgresql)",
        );
        let dir = tempfile::Builder::new()
            .prefix("kettle-pg-")
            .tempdir()
            .expect("a temporary folder");
        let as_postgres = is_root();
        if as_postgres {
            check(
                "chown the cluster's folder to the postgres user",
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(dir.path())
                    .output(),
            );
        }
        let mut server = Self {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        check(
            "initdb",
            server
                .server_tool("initdb")
                .args(["-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C"])
                .args(["--no-sync", "--no-instructions", "-D"])
                .arg(server.data())
                .output(),
        );
        // The free port may be taken by someone else (a test starting its own server at the
        // same moment) before the server binds it: then another one.
        for attempt in 1..=5 {
            server.port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=100",
                server.port,
                server.dir.path().display()
            );
            let started = server
                .server_tool("pg_ctl")
                .args(["-w", "-t", "60", "-o", &options, "-l"])
                .arg(server.dir.path().join("server.log"))
                .arg("-D")
                .arg(server.data())
                .arg("start")
                .output();
            if attempt == 5 || started.as_ref().is_ok_and(|o| o.status.success()) {
                check(
                    &format!("pg_ctl start (server log:\n{})", server.log()),
                    started,
                );
                break;
            }
        }
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server program, run as the `postgres` user when the test runs as root.
    fn server_tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.current_dir(self.dir.path());
        command
    }

    /// Restarts the server (fast shutdown: open connections are closed).
    pub fn restart(&self) {
        check(
            "pg_ctl restart",
            self.server_tool("pg_ctl")
                .args(["-w", "-t", "60", "-m", "fast", "-l"])
                .arg(self.dir.path().join("server.log"))
                .arg("-D")
                .arg(self.data())
                .arg("restart")
                .output(),
        );
    }

    /// Creates the empty database `name` and returns its URL.
    pub fn database(&self, name: &str) -> String {
        check(
            "createdb",
            Command::new(self.bin.join("createdb"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    USER,
                    name,
                ])
                .output(),
        );
        self.url(name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = self
            .server_tool("pg_ctl")
            .args(["-w", "-m", "fast", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}
