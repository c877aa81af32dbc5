//! Reading and writing guest memory from inside a hostcall. A bad pointer from the guest is an
//! error (a trap), not a status: the guest's SDK never passes one, so it would be a bug.

use crate::state::HostState;
use wasmtime::{format_err, Caller, Extern, Memory, Result};

/// The caller's context inside a hostcall.
pub type Ctx<'a> = Caller<'a, HostState>;

fn memory(caller: &mut Ctx<'_>) -> Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(format_err!("the guest exports no `memory`")),
    }
}

/// `len` bytes at `ptr`.
pub fn read(caller: &mut Ctx<'_>, ptr: u32, len: u32) -> Result<Vec<u8>> {
    let memory = memory(caller)?;
    let mut bytes = vec![0; usize::try_from(len)?];
    memory
        .read(&*caller, usize::try_from(ptr)?, &mut bytes)
        .map_err(|_| format_err!("guest read out of bounds: {len} bytes at {ptr:#x}"))?;
    Ok(bytes)
}

/// Text at `ptr` (lossy: the guest's bytes are shown, never rejected).
pub fn read_str(caller: &mut Ctx<'_>, ptr: u32, len: u32) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

/// Writes `bytes` at `ptr`.
pub fn write(caller: &mut Ctx<'_>, ptr: u32, bytes: &[u8]) -> Result<()> {
    let memory = memory(caller)?;
    memory
        .write(&mut *caller, usize::try_from(ptr)?, bytes)
        .map_err(|_| {
            format_err!(
                "guest write out of bounds: {} bytes at {ptr:#x}",
                bytes.len()
            )
        })
}

/// Writes a little-endian `u32` (a wasm32 pointer or size) at `ptr`.
pub fn write_u32(caller: &mut Ctx<'_>, ptr: u32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Hands `bytes` to the guest: copies them into memory the guest allocates with
/// `proxy_on_memory_allocate` (the guest then owns and frees it) and stores the address and
/// size at `ptr_out` and `size_out`.
pub fn give(caller: &mut Ctx<'_>, bytes: &[u8], ptr_out: u32, size_out: u32) -> Result<()> {
    let size = u32::try_from(bytes.len())?;
    let allocate = caller
        .get_export("proxy_on_memory_allocate")
        .and_then(Extern::into_func)
        .ok_or_else(|| format_err!("the guest exports no `proxy_on_memory_allocate`"))?
        .typed::<u32, u32>(&*caller)?;
    let address = allocate.call(&mut *caller, size)?;
    if address == 0 && size > 0 {
        return Err(format_err!("the guest could not allocate {size} bytes"));
    }
    write(caller, address, bytes)?;
    write_u32(caller, ptr_out, address)?;
    write_u32(caller, size_out, size)
}
