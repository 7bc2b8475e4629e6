//! A WebAssembly module an interpreter folder needs but cannot build (Trealla Prolog is C, and
//! there is no C compiler for WebAssembly here): fetched once from npm with `npm pack`, the
//! pinned version, its module taken out of the package's bundled JavaScript (where it sits as
//! base64) and checked against a pinned sha256 before it is written into the folder.

use super::BuildError;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Stdio;
use tokio::process::Command;

/// A module inside an npm package.
#[derive(Debug, Clone, Copy)]
pub struct NpmWasm {
    /// The package and its pinned version (`trealla`, `0.17.10`).
    pub package: &'static str,
    pub version: &'static str,
    /// The file of the package that bundles the module as base64 (`package/trealla.js`).
    pub bundle: &'static str,
    /// Where the module goes, relative to the interpreter's folder (`trealla/tpl.wasm`).
    pub dest: &'static str,
    /// The module's sha256, hex.
    pub sha256: &'static str,
}

impl NpmWasm {
    fn what(&self) -> String {
        format!("{}@{} from npm", self.package, self.version)
    }
}

/// Puts the module into `folder` unless the right one is there; the package is downloaded into
/// `downloads` once.
pub async fn ensure(
    wasm: &NpmWasm,
    folder: &Path,
    downloads: &Path,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<(), BuildError> {
    let dest = folder.join(wasm.dest);
    if std::fs::read(&dest).is_ok_and(|bytes| sha256_hex(&bytes) == wasm.sha256) {
        return Ok(());
    }
    let unpacked = downloads.join(format!("npm-{}-{}", wasm.package, wasm.version));
    let command = format!(
        "npm pack {}@{} --pack-destination {} && tar xzf {}-{}.tgz",
        wasm.package,
        wasm.version,
        unpacked.display(),
        wasm.package,
        wasm.version
    );
    let fail = |output: String| BuildError::Toolchain {
        what: wasm.what(),
        output,
        command: command.clone(),
    };
    let bundle = unpacked.join(wasm.bundle);
    if !bundle.is_file() {
        progress(&format!(
            "fetching {} into {}, once",
            wasm.what(),
            unpacked.display()
        ));
        std::fs::create_dir_all(&unpacked).map_err(|e| fail(e.to_string()))?;
        let spec = format!("{}@{}", wasm.package, wasm.version);
        let tarball = format!("{}-{}.tgz", wasm.package, wasm.version);
        run(Command::new("npm")
            .args(["pack", &spec, "--silent", "--pack-destination"])
            .arg(&unpacked))
        .await
        .map_err(fail)?;
        run(Command::new("tar")
            .args(["xzf", &tarball])
            .current_dir(&unpacked))
        .await
        .map_err(fail)?;
    }
    let text = std::fs::read_to_string(&bundle)
        .map_err(|e| fail(format!("cannot read {}: {e}", bundle.display())))?;
    let module = modules_in(&text)
        .into_iter()
        .find(|module| sha256_hex(module) == wasm.sha256)
        .ok_or_else(|| {
            fail(format!(
                "{} holds no WebAssembly module whose sha256 is {}: the package is not the pinned one",
                bundle.display(),
                wasm.sha256
            ))
        })?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
    }
    std::fs::write(&dest, module).map_err(|e| fail(format!("cannot write {}: {e}", dest.display())))
}

async fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every base64 run in `text` that decodes to a WebAssembly binary (`\0asm` is `AGFzbQ`).
fn modules_in(text: &str) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("AGFzbQ") {
        let run = &rest[at..];
        let len = run
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
            .unwrap_or(run.len());
        if let Some(bytes) = base64_decode(&run[..len]) {
            found.push(bytes);
        }
        rest = &run[len..];
    }
    found
}

/// Standard base64 (with `=` padding) to bytes; `None` if it is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_runs_that_are_modules_are_found() {
        // "\0asm\x01\0\0\0" in base64, twice, amid JavaScript.
        let text = "var a=\"data:application/wasm;base64,AGFzbQEAAAA=\";b('AGFzbQEAAAA')";
        let modules = modules_in(text);
        assert_eq!(modules.len(), 2);
        assert!(modules.iter().all(|m| m == b"\0asm\x01\0\0\0"));
        assert_eq!(base64_decode("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("a$"), None);
    }
}
