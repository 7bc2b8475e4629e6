//! The WASI preview-1 functions Trealla's module imports, implemented deny-by-default: no file
//! is preopened, so every `path_*` call is refused; standard output and error are captured
//! (bounded) for the driver; standard input is empty; there are no arguments but Trealla's own,
//! no environment, and `poll_oneoff` (sleep) is not available. Only the clocks answer.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use wasmi::{Caller, Error, Extern, Linker, Memory};

/// WASI errno values (preview 1).
const SUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ESPIPE: i32 = 70;
const ENOTCAPABLE: i32 = 76;

/// At most this much output is kept per query; what is written beyond it is counted, not kept.
pub const MAX_CAPTURE: usize = 4 << 20;

/// The arguments Trealla's `main` sees (as trealla-js gives them): no signal handlers, quiet,
/// and a goal that leaves the global interpreter ready for queries.
const ARGS: &[&str] = &["tpl", "--ns", "-q", "-g", "use_module(user), halt"];

/// What the WASI functions keep between calls: the captured output.
#[derive(Default)]
pub struct Host {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub dropped: usize,
}

impl Host {
    fn capture(&mut self, fd: i32, bytes: &[u8]) {
        let room = MAX_CAPTURE.saturating_sub(self.stdout.len() + self.stderr.len());
        let kept = bytes.len().min(room);
        self.dropped += bytes.len() - kept;
        let sink = if fd == 1 {
            &mut self.stdout
        } else {
            &mut self.stderr
        };
        sink.extend_from_slice(&bytes[..kept]);
    }
}

fn memory(caller: &Caller<'_, Host>) -> Result<Memory, Error> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(Error::new("the Prolog module exports no memory")),
    }
}

fn write_u32(caller: &mut Caller<'_, Host>, at: i32, value: u32) -> Result<(), Error> {
    memory(caller)?
        .write(caller, at as u32 as usize, &value.to_le_bytes())
        .map_err(|e| Error::new(e.to_string()))
}

fn write_bytes(caller: &mut Caller<'_, Host>, at: i32, bytes: &[u8]) -> Result<(), Error> {
    memory(caller)?
        .write(caller, at as u32 as usize, bytes)
        .map_err(|e| Error::new(e.to_string()))
}

fn read_u32(caller: &Caller<'_, Host>, at: u32) -> Result<u32, Error> {
    let mut buf = [0u8; 4];
    memory(caller)?
        .read(caller, at as usize, &mut buf)
        .map_err(|e| Error::new(e.to_string()))?;
    Ok(u32::from_le_bytes(buf))
}

fn is_stdio(fd: i32) -> bool {
    (0..=2).contains(&fd)
}

fn now_nanos(id: i32) -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    match id {
        // realtime
        0 => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
        // monotonic, process and thread CPU time
        _ => START.get_or_init(Instant::now).elapsed().as_nanos() as u64,
    }
}

/// Defines every `wasi_snapshot_preview1` function Trealla imports.
pub fn link(linker: &mut Linker<Host>) -> Result<(), Error> {
    const M: &str = "wasi_snapshot_preview1";
    let map = |e: wasmi::errors::LinkerError| Error::new(e.to_string());
    linker
        .func_wrap(
            M,
            "args_sizes_get",
            |mut c: Caller<'_, Host>, argc: i32, size: i32| -> Result<i32, Error> {
                let bytes: usize = ARGS.iter().map(|a| a.len() + 1).sum();
                write_u32(&mut c, argc, ARGS.len() as u32)?;
                write_u32(&mut c, size, bytes as u32)?;
                Ok(SUCCESS)
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "args_get",
            |mut c: Caller<'_, Host>, argv: i32, buf: i32| -> Result<i32, Error> {
                let mut at = buf;
                for (i, arg) in ARGS.iter().enumerate() {
                    write_u32(&mut c, argv + 4 * i as i32, at as u32)?;
                    let mut bytes = arg.as_bytes().to_vec();
                    bytes.push(0);
                    write_bytes(&mut c, at, &bytes)?;
                    at += bytes.len() as i32;
                }
                Ok(SUCCESS)
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "environ_sizes_get",
            |mut c: Caller<'_, Host>, count: i32, size: i32| -> Result<i32, Error> {
                write_u32(&mut c, count, 0)?;
                write_u32(&mut c, size, 0)?;
                Ok(SUCCESS)
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "environ_get",
            |_: Caller<'_, Host>, _: i32, _: i32| -> i32 { SUCCESS },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "clock_time_get",
            |mut c: Caller<'_, Host>, id: i32, _precision: i64, out: i32| -> Result<i32, Error> {
                write_bytes(&mut c, out, &now_nanos(id).to_le_bytes())?;
                Ok(SUCCESS)
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(M, "fd_close", |_: Caller<'_, Host>, fd: i32| -> i32 {
            if is_stdio(fd) { SUCCESS } else { EBADF }
        })
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_fdstat_get",
            |mut c: Caller<'_, Host>, fd: i32, out: i32| -> Result<i32, Error> {
                if !is_stdio(fd) {
                    return Ok(EBADF);
                }
                // filetype 2 = character device; no flags; all rights on the stream.
                let mut stat = [0u8; 24];
                stat[0] = 2;
                stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
                write_bytes(&mut c, out, &stat)?;
                Ok(SUCCESS)
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_fdstat_set_flags",
            |_: Caller<'_, Host>, fd: i32, _: i32| -> i32 {
                if is_stdio(fd) { SUCCESS } else { EBADF }
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_filestat_get",
            |mut c: Caller<'_, Host>, fd: i32, out: i32| -> Result<i32, Error> {
                if !is_stdio(fd) {
                    return Ok(EBADF);
                }
                let mut stat = [0u8; 64];
                stat[16] = 2;
                write_bytes(&mut c, out, &stat)?;
                Ok(SUCCESS)
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_pread",
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32, _: i64, _: i32| -> i32 { EBADF },
        )
        .map_err(map)?;
    // No preopened directory: Trealla finds no file system at all.
    linker
        .func_wrap(
            M,
            "fd_prestat_get",
            |_: Caller<'_, Host>, _: i32, _: i32| -> i32 { EBADF },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_prestat_dir_name",
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32| -> i32 { EBADF },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_read",
            |mut c: Caller<'_, Host>,
             fd: i32,
             _iovs: i32,
             _len: i32,
             read: i32|
             -> Result<i32, Error> {
                if fd != 0 {
                    return Ok(EBADF);
                }
                // Standard input is empty.
                write_u32(&mut c, read, 0)?;
                Ok(SUCCESS)
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_readdir",
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32, _: i64, _: i32| -> i32 { EBADF },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_seek",
            |_: Caller<'_, Host>, fd: i32, _: i64, _: i32, _: i32| -> i32 {
                if is_stdio(fd) { ESPIPE } else { EBADF }
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "fd_write",
            |mut c: Caller<'_, Host>,
             fd: i32,
             iovs: i32,
             len: i32,
             written: i32|
             -> Result<i32, Error> {
                if fd != 1 && fd != 2 {
                    return Ok(EBADF);
                }
                if !(0..=1024).contains(&len) {
                    return Ok(EINVAL);
                }
                let mem = memory(&c)?;
                let mut total = 0u32;
                for i in 0..len as u32 {
                    let entry = iovs as u32 + 8 * i;
                    let base = read_u32(&c, entry)? as usize;
                    let size = read_u32(&c, entry + 4)? as usize;
                    let data = mem.data(&c);
                    let Some(bytes) = data.get(base..base.saturating_add(size)) else {
                        return Ok(EINVAL);
                    };
                    let bytes = bytes.to_vec();
                    c.data_mut().capture(fd, &bytes);
                    total = total.saturating_add(size as u32);
                }
                write_u32(&mut c, written, total)?;
                Ok(SUCCESS)
            },
        )
        .map_err(map)?;
    for name in [
        "path_create_directory",
        "path_remove_directory",
        "path_unlink_file",
    ] {
        linker
            .func_wrap(
                M,
                name,
                |_: Caller<'_, Host>, _: i32, _: i32, _: i32| -> i32 { ENOTCAPABLE },
            )
            .map_err(map)?;
    }
    linker
        .func_wrap(
            M,
            "path_filestat_get",
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 { ENOTCAPABLE },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "path_open",
            |_: Caller<'_, Host>,
             _: i32,
             _: i32,
             _: i32,
             _: i32,
             _: i32,
             _: i64,
             _: i64,
             _: i32,
             _: i32|
             -> i32 { ENOTCAPABLE },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "path_readlink",
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 {
                ENOTCAPABLE
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "path_rename",
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 {
                ENOTCAPABLE
            },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "poll_oneoff",
            |_: Caller<'_, Host>, _: i32, _: i32, _: i32, _: i32| -> i32 { ENOSYS },
        )
        .map_err(map)?;
    linker
        .func_wrap(
            M,
            "proc_exit",
            |_: Caller<'_, Host>, code: i32| -> Result<(), Error> { Err(Error::i32_exit(code)) },
        )
        .map_err(map)?;
    Ok(())
}
