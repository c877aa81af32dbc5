//! The few WASI preview1 imports a Rust `wasm32-wasip1` module links against, stubbed:
//! no environment, stdio captured into the log, deterministic randomness, `proc_exit` traps.

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
            write_u32(&mut c, count_out, 0)?;
            write_u32(&mut c, size_out, 0)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "environ_get", |_: Ctx<'_>, _: u32, _: u32| {
        ERRNO_SUCCESS
    })?;
    linker.func_wrap(WASI, "proc_exit", |_: Ctx<'_>, code: u32| -> Result<()> {
        Err(format_err!("the guest called proc_exit({code})"))
    })?;
    Ok(())
}
