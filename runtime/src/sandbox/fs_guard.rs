//! Checks on granted folders that cap-std does not make, by shadowing two functions of
//! `wasi:filesystem/types` in the linker with wrappers that check, then delegate to
//! wasmtime-wasi:
//!
//! - `open-at` refuses what is not a file, a folder or a link (a FIFO, a socket, a device):
//!   opening a FIFO blocks until someone writes to it, which would hold one of the host's
//!   threads, and with it the host's exit, for ever.
//! - `symlink-at` refuses a link whose target leaves the link's own folder (an absolute
//!   path, or a relative one that climbs above it with `..`): the node could not follow it,
//!   but the next program that opens the folder would.
//!
//! The check before `open-at` is a separate call: a file swapped for a FIFO in between, by
//! something outside the sandbox, is not caught (a node cannot create FIFOs); `kettle run`
//! does not wait for a thread left blocked that way when it exits.

use super::host::NodeHost;
use std::path::{Component, Path};
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::FsError;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, DescriptorType, ErrorCode, Host, HostDescriptor, OpenFlags, PathFlags,
};

/// The interface as wasmtime-wasi's linker names it; older 0.2 imports resolve to it.
const INTERFACE: &str = "wasi:filesystem/types@0.2.12";

type OpenParams = (
    Resource<Descriptor>,
    PathFlags,
    String,
    OpenFlags,
    DescriptorFlags,
);

/// Shadows `open-at` and `symlink-at` of the WASI linker already in `linker`.
pub fn link(linker: &mut Linker<NodeHost>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(INTERFACE)?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store, (fd, path_flags, path, oflags, flags): OpenParams| {
            Box::new(async move {
                let node = store.data().node_name().to_string();
                let mut view = store.data_mut().filesystem();
                let at = Resource::<Descriptor>::new_borrow(fd.rep());
                if let Ok(stat) = view.stat_at(at, path_flags, path.clone()).await
                    && !openable(stat.type_)
                {
                    tracing::warn!(
                        node,
                        path,
                        "a node tried to open a FIFO, socket or device in a granted folder; refused"
                    );
                    return Ok((Err(ErrorCode::NotPermitted),));
                }
                let opened = view.open_at(fd, path_flags, path, oflags, flags).await;
                Ok((result(&mut view, opened)?,))
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.symlink-at",
        |mut store, (fd, target, link): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                if !stays_inside(&target) {
                    let node = store.data().node_name().to_string();
                    tracing::warn!(
                        node,
                        link,
                        target,
                        "a node tried to create a link leaving its granted folder; refused"
                    );
                    return Ok((Err(ErrorCode::NotPermitted),));
                }
                let mut view = store.data_mut().filesystem();
                let made = view.symlink_at(fd, target, link).await;
                Ok((result(&mut view, made)?,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// wasmtime-wasi's answer as the guest gets it (an error code), or the trap it means.
fn result<T>(
    view: &mut wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_>,
    outcome: Result<T, FsError>,
) -> wasmtime::Result<Result<T, ErrorCode>> {
    match outcome {
        Ok(value) => Ok(Ok(value)),
        Err(error) => Ok(Err(view.convert_error_code(error)?)),
    }
}

/// What a node may open: files, folders, and links (which the open follows or refuses).
fn openable(kind: DescriptorType) -> bool {
    matches!(
        kind,
        DescriptorType::RegularFile | DescriptorType::Directory | DescriptorType::SymbolicLink
    )
}

/// Whether a link with this target, wherever it is made, points inside its own folder.
fn stays_inside(target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\\') {
        return false;
    }
    let mut depth: usize = 0;
    for component in Path::new(target).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::stays_inside;

    #[test]
    fn link_targets_must_stay_in_their_folder() {
        for inside in ["a", "a/b", "./a", "a/../b", "a/b/../../c", "."] {
            assert!(stays_inside(inside), "{inside}");
        }
        for outside in ["", "/etc/passwd", "..", "../x", "a/../../x", "a\\..\\..\\x"] {
            assert!(!stays_inside(outside), "{outside}");
        }
    }
}
