//! The files a Python or JavaScript build needs besides the node's own: the WIT the host was
//! built with and the guest SDKs. They are compiled into `kettle` and written out on demand, so
//! that an installed `kettle` builds nodes without the repository.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The WIT files the host was built with: a change to them makes every node stale.
pub const WIT: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../wit/world.wit")),
    ("types.wit", include_str!("../../wit/types.wit")),
    ("llm.wit", include_str!("../../wit/llm.wit")),
    ("trace.wit", include_str!("../../wit/trace.wit")),
    ("log.wit", include_str!("../../wit/log.wit")),
    ("interrupt.wit", include_str!("../../wit/interrupt.wit")),
];

/// The Python SDK: the package `kettle`, imported by `app.py`.
pub const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "kettle/__init__.py",
        include_str!("../../guest-sdk/python/kettle/__init__.py"),
    ),
    (
        "kettle/_interrupt.py",
        include_str!("../../guest-sdk/python/kettle/_interrupt.py"),
    ),
    (
        "kettle/_traceback.py",
        include_str!("../../guest-sdk/python/kettle/_traceback.py"),
    ),
    (
        "kettle/_world.py",
        include_str!("../../guest-sdk/python/kettle/_world.py"),
    ),
    (
        "kettle/errors.py",
        include_str!("../../guest-sdk/python/kettle/errors.py"),
    ),
    (
        "kettle/llm.py",
        include_str!("../../guest-sdk/python/kettle/llm.py"),
    ),
    (
        "kettle/log.py",
        include_str!("../../guest-sdk/python/kettle/log.py"),
    ),
    (
        "kettle/node.py",
        include_str!("../../guest-sdk/python/kettle/node.py"),
    ),
    (
        "kettle/trace.py",
        include_str!("../../guest-sdk/python/kettle/trace.py"),
    ),
];

/// The JavaScript SDK: the module `kettle`, imported by the node's code.
pub const JS_SDK: &[(&str, &str)] = &[
    ("kettle.js", include_str!("../../guest-sdk/js/kettle.js")),
    (
        "no-fetch.js",
        include_str!("../../guest-sdk/js/no-fetch.js"),
    ),
];

/// Hash of a set of embedded files.
pub fn digest(files: &[(&str, &str)]) -> String {
    let mut hasher = Sha256::new();
    for (name, text) in files {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// Writes `files` under `{root}/{kind}-{hash}/` (once: the folder name is their content's hash)
/// and returns that folder.
pub fn materialize(root: &Path, kind: &str, files: &[(&str, &str)]) -> std::io::Result<PathBuf> {
    let dir = root.join(format!("{kind}-{}", &digest(files)[..16]));
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    // Written aside and renamed, so that concurrent builds never see half a folder.
    let partial = root.join(format!("{kind}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    for (name, text) in files {
        let path = partial.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    std::fs::write(partial.join(".complete"), "")?;
    match std::fs::rename(&partial, &dir) {
        Ok(()) => Ok(dir),
        // Another build wrote the same folder first: its content is the same.
        Err(_) if dir.join(".complete").is_file() => {
            let _ = std::fs::remove_dir_all(&partial);
            Ok(dir)
        }
        Err(error) => Err(error),
    }
}
