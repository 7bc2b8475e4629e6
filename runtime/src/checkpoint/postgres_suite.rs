//! The store suite (`suite.rs`) against a real Postgres server started by the test, plus what
//! only Postgres has: several processes opening one fresh database at once, and the calls made
//! from tokio worker threads as the engine makes them.

#[allow(dead_code)]
#[path = "../../../tests/e2e/support/debian.rs"]
mod debian;
#[allow(dead_code)]
#[path = "../../../tests/e2e/support/postgres.rs"]
mod server;

use super::suite::{self, store_suite};
use super::*;
use server::PostgresServer;

#[test]
fn postgres_store_passes_the_suite() {
    let server = PostgresServer::start();
    let url = server.database("suite");
    // From inside a tokio runtime, as the engine calls its store: a sync client used there
    // directly would panic.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = open_store("sqlite", Some(&url)).unwrap();
        assert_eq!(
            store.location(),
            format!("postgres://kettle@127.0.0.1:{}/suite", url_port(&url))
        );
        store_suite(store);
    });
    // Reopened (another process, a resume): the checkpoints are there.
    let store = open_store("postgres", Some(&url)).unwrap();
    let run = store.run("run-a").unwrap().unwrap();
    assert_eq!(run.checkpoints, 2);
    assert_eq!(
        store.checkpoint("run-a", Some(1)).unwrap().unwrap().reason,
        "after node split"
    );
}

fn url_port(url: &str) -> &str {
    url.rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .unwrap_or("")
}

#[test]
fn postgres_store_opens_a_fresh_database_from_many_processes_at_once() {
    let server = PostgresServer::start();
    let url = server.database("fresh");
    let barrier = std::sync::Barrier::new(8);
    let opened: Vec<Result<Arc<dyn CheckpointStore>, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    open_store("postgres", Some(&url))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for store in opened {
        let store = store.unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
        assert!(store.runs().unwrap().is_empty());
    }
}

#[test]
fn postgres_store_reconnects_after_the_server_restarts() {
    let server = PostgresServer::start();
    let url = server.database("restarted");
    let store = open_store("postgres", Some(&url)).unwrap();
    store.put_run(&suite::record("run-a", 1)).unwrap();
    server.restart();
    let run = store
        .run("run-a")
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert_eq!(run.map(|r| r.run_id).as_deref(), Some("run-a"));
}

#[test]
fn postgres_store_says_where_it_failed_without_the_password() {
    let server = PostgresServer::start();
    let url = server.url("missing").replace("kettle@", "kettle:s3cret@");
    let error = open_store("postgres", Some(&url)).unwrap_err().to_string();
    assert!(error.contains("/missing"), "{error}");
    assert!(error.contains("does not exist"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
    // No TLS: a URL that requires it is refused, not silently sent in clear.
    let tls = format!("{}?sslmode=require", server.url("postgres"));
    let error = open_store("postgres", Some(&tls)).unwrap_err().to_string();
    assert!(error.contains("TLS"), "{error}");
    let error = open_store("postgres", None).unwrap_err().to_string();
    assert!(error.contains("postgres://"), "{error}");
}
