//! The few WASI preview1 imports a Rust `wasm32-wasip1` module links against, stubbed:
//! the environment the test set, stdio captured into the log, deterministic randomness,
//! `proc_exit` traps.

use crate::memory::{read, write, write_u32, Ctx};
use crate::state::{HostState, LogLine};
use wasmtime::{format_err, Linker, Result};

const WASI: &str = "wasi_snapshot_preview1";
const ERRNO_SUCCESS: u32 = 0;

/// Adds the WASI stubs to `linker`.
pub fn define(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut c: Ctx<'_>, _fd: u32, iovs: u32, iovs_len: u32, written_out: u32| {
            let mut text = Vec::new();
            for n in 0..iovs_len {
                let iov = read(&mut c, iovs.wrapping_add(n.wrapping_mul(8)), 8)?;
                let word = |at: usize| {
                    u32::from_le_bytes([iov[at], iov[at + 1], iov[at + 2], iov[at + 3]])
                };
                text.extend(read(&mut c, word(0), word(4))?);
            }
            let written = u32::try_from(text.len())?;
            c.data_mut().logs.push(LogLine {
                level: 4,
                message: String::from_utf8_lossy(&text).into_owned(),
            });
            write_u32(&mut c, written_out, written)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "random_get", |mut c: Ctx<'_>, buf: u32, len: u32| {
        let bytes = c.data_mut().random_bytes(usize::try_from(len)?);
        write(&mut c, buf, &bytes)?;
        Ok(ERRNO_SUCCESS)
    })?;
    linker.func_wrap(
        WASI,
        "environ_sizes_get",
        |mut c: Ctx<'_>, count_out: u32, size_out: u32| {
            let entries = environment(&c);
            let size: usize = entries.iter().map(Vec::len).sum();
            write_u32(&mut c, count_out, u32::try_from(entries.len())?)?;
            write_u32(&mut c, size_out, u32::try_from(size)?)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "environ_get",
        |mut c: Ctx<'_>, pointers: u32, buffer: u32| -> Result<u32> {
            let mut at = buffer;
            for (n, entry) in environment(&c).iter().enumerate() {
                write_u32(&mut c, pointers.wrapping_add(u32::try_from(n)? * 4), at)?;
                write(&mut c, at, entry)?;
                at = at.wrapping_add(u32::try_from(entry.len())?);
            }
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "proc_exit", |_: Ctx<'_>, code: u32| -> Result<()> {
        Err(format_err!("the guest called proc_exit({code})"))
    })?;
    Ok(())
}

/// The environment as WASI hands it over: `NAME=value` strings, each NUL-terminated.
fn environment(c: &Ctx<'_>) -> Vec<Vec<u8>> {
    c.data()
        .env
        .iter()
        .map(|(name, value)| format!("{name}={value}\0").into_bytes())
        .collect()
}
