//! The `env` imports: proxy-wasm 0.2 hostcalls (signatures from the SDK's `hostcalls.rs`).
//! Only what the Portcullis filter calls is implemented; any other import traps when called.

use crate::abi::{self, status};
use crate::memory::{give, read, read_str, write, write_u32, Ctx};
use crate::state::{set_header, Call, LocalResponse, LogLine};
use wasmtime::{format_err, Linker, Result};

const ENV: &str = "env";

/// Adds the implemented hostcalls to `linker`.
pub fn define(linker: &mut Linker<crate::state::HostState>) -> Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_log",
        |mut c: Ctx<'_>, level: u32, ptr: u32, len: u32| {
            let message = read_str(&mut c, ptr, len)?;
            c.data_mut().logs.push(LogLine { level, message });
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_current_time_nanoseconds",
        |mut c: Ctx<'_>, out: u32| {
            let nanos = c.data().now_ms.saturating_mul(1_000_000);
            write(&mut c, out, &nanos.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_tick_period_milliseconds",
        |mut c: Ctx<'_>, ms: u32| {
            c.data_mut().tick_period_ms = ms;
            status::OK
        },
    )?;
    linker.func_wrap(ENV, "proxy_set_effective_context", |_: Ctx<'_>, _: u32| {
        status::OK
    })?;
    linker.func_wrap(ENV, "proxy_continue_stream", |_: Ctx<'_>, _: u32| {
        status::OK
    })?;
    linker.func_wrap(ENV, "proxy_close_stream", |_: Ctx<'_>, _: u32| status::OK)?;
    linker.func_wrap(ENV, "proxy_done", |_: Ctx<'_>| status::OK)?;
    define_buffers_and_maps(linker)?;
    define_properties_and_shared_data(linker)?;
    define_metrics(linker)?;
    define_http(linker)
}

fn define_buffers_and_maps(linker: &mut Linker<crate::state::HostState>) -> Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_get_buffer_bytes",
        |mut c: Ctx<'_>, kind: u32, start: u32, max: u32, ptr_out: u32, size_out: u32| {
            let Some(buffer) = c.data().buffer(kind) else {
                return Ok(status::NOT_FOUND);
            };
            let start = usize::try_from(start)?.min(buffer.len());
            let end = start
                .saturating_add(usize::try_from(max)?)
                .min(buffer.len());
            let bytes = buffer[start..end].to_vec();
            give(&mut c, &bytes, ptr_out, size_out)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_pairs",
        |mut c: Ctx<'_>, kind: u32, ptr_out: u32, size_out: u32| {
            let Some(map) = c.data_mut().map_mut(kind) else {
                return Ok(status::NOT_FOUND);
            };
            let bytes = abi::encode_map(map);
            give(&mut c, &bytes, ptr_out, size_out)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_value",
        |mut c: Ctx<'_>, kind: u32, key: u32, key_len: u32, ptr_out: u32, size_out: u32| {
            let name = read_str(&mut c, key, key_len)?;
            let Some(map) = c.data_mut().map_mut(kind) else {
                return Ok(status::NOT_FOUND);
            };
            let Some((_, value)) = map.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)) else {
                return Ok(status::NOT_FOUND);
            };
            let value = value.clone();
            give(&mut c, &value, ptr_out, size_out)?;
            Ok(status::OK)
        },
    )?;
    let edit = |replace: bool| {
        move |mut c: Ctx<'_>, kind: u32, key: u32, key_len: u32, value: u32, value_len: u32| {
            let name = read_str(&mut c, key, key_len)?;
            let value = read(&mut c, value, value_len)?;
            let Some(map) = c.data_mut().map_mut(kind) else {
                return Ok(status::NOT_FOUND);
            };
            if replace {
                set_header(map, &name, Some(value));
            } else {
                map.push((name.to_ascii_lowercase(), value));
            }
            Ok(status::OK)
        }
    };
    linker.func_wrap(ENV, "proxy_replace_header_map_value", edit(true))?;
    linker.func_wrap(ENV, "proxy_add_header_map_value", edit(false))?;
    linker.func_wrap(
        ENV,
        "proxy_remove_header_map_value",
        |mut c: Ctx<'_>, kind: u32, key: u32, key_len: u32| {
            let name = read_str(&mut c, key, key_len)?;
            let Some(map) = c.data_mut().map_mut(kind) else {
                return Ok(status::NOT_FOUND);
            };
            set_header(map, &name, None);
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn define_properties_and_shared_data(linker: &mut Linker<crate::state::HostState>) -> Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_get_property",
        |mut c: Ctx<'_>, path: u32, path_len: u32, ptr_out: u32, size_out: u32| {
            let name = abi::property_name(&read(&mut c, path, path_len)?);
            let state = c.data();
            let Some(value) = state
                .filter_state
                .get(&name)
                .or(state.properties.get(&name))
            else {
                return Ok(status::NOT_FOUND);
            };
            let value = value.clone();
            give(&mut c, &value, ptr_out, size_out)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_property",
        |mut c: Ctx<'_>, path: u32, path_len: u32, value: u32, value_len: u32| {
            let name = abi::property_name(&read(&mut c, path, path_len)?);
            let value = read(&mut c, value, value_len)?;
            c.data_mut().filter_state.insert(name, value);
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_shared_data",
        |mut c: Ctx<'_>, key: u32, key_len: u32, ptr_out: u32, size_out: u32, cas_out: u32| {
            let key = read_str(&mut c, key, key_len)?;
            let Some((value, cas)) = c.data().shared.get(&key).cloned() else {
                return Ok(status::NOT_FOUND);
            };
            give(&mut c, &value, ptr_out, size_out)?;
            write_u32(&mut c, cas_out, cas)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_shared_data",
        |mut c: Ctx<'_>, key: u32, key_len: u32, value: u32, value_len: u32, cas: u32| {
            let key = read_str(&mut c, key, key_len)?;
            let value = read(&mut c, value, value_len)?;
            Ok(if c.data_mut().set_shared(key, value, cas) {
                status::OK
            } else {
                status::CAS_MISMATCH
            })
        },
    )?;
    Ok(())
}

fn define_metrics(linker: &mut Linker<crate::state::HostState>) -> Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_define_metric",
        |mut c: Ctx<'_>, _kind: u32, name: u32, name_len: u32, id_out: u32| {
            let name = read_str(&mut c, name, name_len)?;
            let id = c.data_mut().define_metric(name);
            write_u32(&mut c, id_out, id)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_increment_metric",
        |mut c: Ctx<'_>, id: u32, offset: i64| match c.data_mut().metric_mut(id) {
            Some(metric) => {
                metric.value = metric.value.saturating_add_signed(offset);
                status::OK
            }
            None => status::NOT_FOUND,
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_record_metric",
        |mut c: Ctx<'_>, id: u32, value: u64| match c.data_mut().metric_mut(id) {
            Some(metric) => {
                metric.value = value;
                status::OK
            }
            None => status::NOT_FOUND,
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_metric",
        |mut c: Ctx<'_>, id: u32, out: u32| {
            let Some(value) = c.data_mut().metric_mut(id).map(|m| m.value) else {
                return Ok(status::NOT_FOUND);
            };
            write(&mut c, out, &value.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    Ok(())
}

fn define_http(linker: &mut Linker<crate::state::HostState>) -> Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_http_call",
        |mut c: Ctx<'_>,
         cluster: u32,
         cluster_len: u32,
         headers: u32,
         headers_len: u32,
         body: u32,
         body_len: u32,
         _trailers: u32,
         _trailers_len: u32,
         timeout_ms: u32,
         token_out: u32| {
            let cluster = read_str(&mut c, cluster, cluster_len)?;
            let headers = abi::decode_map(&read(&mut c, headers, headers_len)?)
                .ok_or_else(|| format_err!("proxy_http_call: malformed header map"))?;
            let body = read(&mut c, body, body_len)?;
            let state = c.data_mut();
            state.last_token += 1;
            let token = state.last_token;
            state.pending.push(Call {
                token,
                cluster,
                headers,
                body,
                timeout_ms,
            });
            write_u32(&mut c, token_out, token)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_send_local_response",
        |mut c: Ctx<'_>,
         status_code: u32,
         _details: u32,
         _details_len: u32,
         body: u32,
         body_len: u32,
         headers: u32,
         headers_len: u32,
         _grpc_status: i32| {
            let body = read(&mut c, body, body_len)?;
            let headers = abi::decode_map(&read(&mut c, headers, headers_len)?)
                .ok_or_else(|| format_err!("proxy_send_local_response: malformed header map"))?;
            let state = c.data_mut();
            if state.local_response.is_some() {
                return Err(format_err!("the guest sent a second local response"));
            }
            state.local_response = Some(LocalResponse {
                status: status_code,
                headers,
                body,
            });
            Ok(status::OK)
        },
    )?;
    Ok(())
}
