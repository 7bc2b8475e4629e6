//! Finds Trealla Prolog's WebAssembly module (`trealla/tpl.wasm`, written here by Kettle from
//! the npm package `trealla`, or by `fetch-trealla.sh`), checks it is the pinned one, and
//! hands its path to the crate.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The sha256 of `tpl.wasm` inside npm's `trealla@0.17.10` (kettle-build pins the same).
const TREALLA_SHA256: &str = "5d6fcf41b960b9ce1b3bab65acf25f02b531c880c9dc31eab8c58409caf7cf60";

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let wasm = dir.join("trealla").join("tpl.wasm");
    println!("cargo:rerun-if-changed={}", wasm.display());
    let bytes = match std::fs::read(&wasm) {
        Ok(bytes) => bytes,
        Err(error) => panic!(
            "cannot read {}: {error}. Kettle writes it when it builds the Prolog interpreter; \
             in the repository run interpreters/prolog/fetch-trealla.sh",
            wasm.display()
        ),
    };
    let digest = hex::encode(Sha256::digest(&bytes));
    assert_eq!(
        digest,
        TREALLA_SHA256,
        "{} is not the pinned Trealla module (trealla@0.17.10): run fetch-trealla.sh again",
        wasm.display()
    );
    println!("cargo:rustc-env=KETTLE_TREALLA_WASM={}", wasm.display());
}
