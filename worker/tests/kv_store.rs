//! The state bucket passes the suite every checkpoint store passes, against a real
//! `nats-server -js`: called from a plain thread, and from a task of a multi-thread runtime
//! (the engine's case, where the bridge must not block the runtime).

#[path = "../../tests/e2e/support/debian.rs"]
mod debian;

use kettle::checkpoint::CheckpointStore;
use kettle::checkpoint::suite::store_suite;
use kettle_worker::{Jet, KvStore};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NATS_SERVER: &str = "/usr/sbin/nats-server";

struct Nats {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats_server() -> Nats {
    // Debian's package: installed the first time, as the e2e suite does.
    debian::ensure(NATS_SERVER, &["nats-server"]);
    let program = NATS_SERVER;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let child = Command::new(program)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nats {
        child,
        url: format!("nats://127.0.0.1:{port}"),
        _dir: dir,
    }
}

fn store(runtime: &tokio::runtime::Runtime, url: &str) -> Arc<dyn CheckpointStore> {
    let jet = runtime.block_on(Jet::connect(url)).expect("connects");
    Arc::new(KvStore::open(&jet))
}

#[test]
fn the_bucket_passes_the_store_suite_from_a_plain_thread() {
    let nats = nats_server();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    store_suite(store(&runtime, &nats.url));
}

#[test]
fn the_bucket_passes_the_store_suite_inside_a_multi_thread_runtime() {
    let nats = nats_server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let store = store(&runtime, &nats.url);
    runtime
        .block_on(async move { tokio::spawn(async move { store_suite(store) }).await })
        .expect("the suite passes");
}
