//! The pool's fiber stacks get their guard pages at first use (vendor/README.md, change 2):
//! its own test binary, so that no other test's threads add guard pages while it counts them.
#![cfg(all(target_os = "linux", feature = "compiler"))]

use kettle::sandbox::{SandboxConfig, new_engine};
use std::collections::BTreeSet;

/// `(module (func (export "f")))`: an async call runs it on a fiber stack of the pool.
const ONE_EMPTY_FUNCTION: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, // magic, version
    1, 4, 1, 0x60, 0, 0, // type section: () -> ()
    3, 2, 1, 0, // function section
    7, 5, 1, 1, b'f', 0, 0, // export "f"
    0x0a, 4, 1, 2, 0, 0x0b, // code: an empty body
];

/// This process's mappings, each as (start, end, permissions).
fn mappings() -> Vec<(usize, usize, String)> {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (low, high) = fields.next()?.split_once('-')?;
            let low = usize::from_str_radix(low, 16).ok()?;
            let high = usize::from_str_radix(high, 16).ok()?;
            Some((low, high, fields.next()?.to_string()))
        })
        .collect()
}

/// The inaccessible single pages of this process: guard pages.
fn guard_pages() -> BTreeSet<usize> {
    mappings()
        .into_iter()
        .filter(|(low, high, permissions)| high - low == 4096 && permissions.starts_with("---"))
        .map(|(low, _, _)| low)
        .collect()
}

/// Creating an engine used to make the guard page of every stack of its pool inaccessible (a
/// thousand `mprotect` calls and two thousand mappings in every `kettle run` of a component);
/// now a stack gets its guard page when it is first handed out, and the stack that runs code
/// has one, right below it.
#[tokio::test(flavor = "current_thread")]
async fn a_stack_of_the_pool_gets_its_guard_page_at_its_first_use() {
    let stacks = 48;
    let before = guard_pages();
    let engine = new_engine(&SandboxConfig {
        max_concurrent_instances: stacks,
        ..SandboxConfig::default()
    })
    .expect("engine");
    let created = guard_pages();
    assert_eq!(
        created.difference(&before).count(),
        0,
        "a {stacks}-stack pool protects no guard page before a stack is used"
    );

    // Compiling starts Cranelift's worker threads, each with its own guard page: counted
    // before the code runs, not after.
    let module = wasmtime::Module::new(&engine, ONE_EMPTY_FUNCTION).expect("module");
    let compiled = guard_pages();
    let mut store = wasmtime::Store::new(&engine, ());
    store.set_fuel(1_000).expect("fuel");
    store.set_epoch_deadline(1_000);
    let instance = wasmtime::Instance::new_async(&mut store, &module, &[])
        .await
        .expect("instance");
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "f")
        .expect("f");
    run.call_async(&mut store, ()).await.expect("runs");

    let used: Vec<usize> = guard_pages().difference(&compiled).copied().collect();
    assert!(
        (1..=2).contains(&used.len()),
        "the stack that ran code (one, or two if instantiation took its own) has its guard page: {used:x?}"
    );
    let maps = mappings();
    for guard in used {
        let above = maps.iter().find(|(low, _, _)| *low == guard + 4096);
        assert!(
            above.is_some_and(|(_, _, permissions)| permissions.starts_with("rw")),
            "the guard page at {guard:x} lies right below a stack: {above:?}"
        );
    }
}
