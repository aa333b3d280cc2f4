//! The one place weir calls the proxy-wasm host: raw ABI imports wrapped in functions that
//! return `Result` for every status, and parse every host buffer without panicking.
//!
//! Why not the SDK's `hostcalls`: they `panic!` on statuses they do not expect (and declare the
//! imports as returning a Rust enum, which is undefined behaviour for a value outside it), and a
//! panic traps the whole VM: every request on that worker fails until Envoy reloads it. The SDK
//! is still used for the entry point, the context traits and the allocator the host calls into,
//! which is what makes the `Vec::from_raw_parts` below sound: the host allocates returned
//! buffers through the SDK's exported `proxy_on_memory_allocate`, i.e. the Rust global allocator.
#![allow(unsafe_code)]

use std::ptr::{null, null_mut};

/// A host status other than Ok (proxy-wasm ABI 0.2.1 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

pub const NOT_FOUND: u32 = 1;
pub const CAS_MISMATCH: u32 = 8;

type Result<T> = std::result::Result<T, HostError>;

#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Map {
    RequestHeaders = 0,
    ResponseHeaders = 2,
}

#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    RequestBody = 0,
    ResponseBody = 1,
    PluginConfiguration = 7,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        k: *const u8,
        ks: usize,
        v: *const u8,
        vs: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, k: *const u8, ks: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buf: u32,
        start: usize,
        max: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buf: u32,
        start: usize,
        size: usize,
        data: *const u8,
        len: usize,
    ) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        k: *const u8,
        ks: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(k: *const u8, ks: usize, v: *const u8, vs: usize, cas: u32) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
}

fn check(status: u32) -> Result<()> {
    if status == 0 {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// Takes ownership of a host-returned buffer (allocated through our allocator).
fn owned(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        // SAFETY: the host allocated `size` bytes at `data` with proxy_on_memory_allocate, which
        // the SDK implements with the global allocator, and handed ownership to us.
        Some(unsafe { Vec::from_raw_parts(data, size, size) })
    }
}

/// Every header of a map: names as the host gives them (lower-case), values as raw bytes,
/// repeats kept. A malformed serialisation yields what could be read.
pub fn headers(map: Map) -> Result<Vec<(String, Vec<u8>)>> {
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: out-pointers are valid for the duration of the call.
    check(unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) })?;
    Ok(owned(data, size)
        .map(|b| parse_pairs(&b))
        .unwrap_or_default())
}

fn parse_pairs(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let u32_at = |at: usize| -> Option<usize> {
        let raw = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes(raw.try_into().ok()?) as usize)
    };
    let mut out = Vec::new();
    let Some(count) = u32_at(0) else { return out };
    let Some(mut p) = count.checked_mul(8).and_then(|n| n.checked_add(4)) else {
        return out;
    };
    for i in 0..count {
        let (Some(ks), Some(vs)) = (u32_at(4 + i * 8), u32_at(8 + i * 8)) else {
            break;
        };
        let key = p.checked_add(ks).and_then(|end| bytes.get(p..end));
        let vstart = p.saturating_add(ks).saturating_add(1);
        let value = vstart
            .checked_add(vs)
            .and_then(|end| bytes.get(vstart..end));
        let (Some(key), Some(value)) = (key, value) else {
            break;
        };
        out.push((
            String::from_utf8_lossy(key).to_ascii_lowercase(),
            value.to_vec(),
        ));
        p = vstart.saturating_add(vs).saturating_add(1);
    }
    out
}

pub fn set_header(map: Map, name: &str, value: &str) -> Result<()> {
    // SAFETY: pointers and lengths describe live byte slices.
    check(unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn remove_header(map: Map, name: &str) -> Result<()> {
    // SAFETY: as above.
    check(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// The first `size` bytes of a body or configuration buffer; empty when there is none.
pub fn buffer(buf: Buffer, size: usize) -> Result<Vec<u8>> {
    let mut data = null_mut();
    let mut len = 0;
    // SAFETY: out-pointers are valid for the duration of the call.
    match unsafe { proxy_get_buffer_bytes(buf as u32, 0, size, &mut data, &mut len) } {
        0 => Ok(owned(data, len).unwrap_or_default()),
        NOT_FOUND => Ok(Vec::new()),
        s => Err(HostError(s)),
    }
}

/// Replaces the first `size` bytes of a body buffer (the whole current chunk) with `bytes`.
pub fn replace_buffer(buf: Buffer, size: usize, bytes: &[u8]) -> Result<()> {
    // SAFETY: pointer and length describe a live slice.
    check(unsafe { proxy_set_buffer_bytes(buf as u32, 0, size, bytes.as_ptr(), bytes.len()) })
}

pub fn send_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Result<()> {
    let mut map = Vec::new();
    map.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (n, v) in headers {
        map.extend_from_slice(&(n.len() as u32).to_le_bytes());
        map.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (n, v) in headers {
        map.extend_from_slice(n.as_bytes());
        map.push(0);
        map.extend_from_slice(v.as_bytes());
        map.push(0);
    }
    let details = b"weir";
    // SAFETY: pointers and lengths describe live byte slices.
    check(unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            if body.is_empty() {
                null()
            } else {
                body.as_ptr()
            },
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        )
    })
}

/// A property as bytes; `Ok(None)` when the host has no value for the path.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>> {
    let serialized = path.join("\0");
    let mut data = null_mut();
    let mut size = 0;
    // SAFETY: out-pointers are valid for the duration of the call.
    match unsafe { proxy_get_property(serialized.as_ptr(), serialized.len(), &mut data, &mut size) }
    {
        0 => Ok(owned(data, size)),
        NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

/// A property as text, when it exists and is UTF-8.
pub fn property_str(path: &[&str]) -> Option<String> {
    property(path)
        .ok()
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Shared data: value and CAS (`(None, 0)` when missing).
pub fn shared_get(key: &str) -> Result<(Option<Vec<u8>>, u32)> {
    let mut data = null_mut();
    let mut size = 0;
    let mut cas = 0;
    // SAFETY: out-pointers are valid for the duration of the call.
    match unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) }
    {
        0 => Ok((owned(data, size), cas)),
        NOT_FOUND => Ok((None, 0)),
        s => Err(HostError(s)),
    }
}

pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<()> {
    // SAFETY: pointers and lengths describe live byte slices.
    check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// Sets a property; Envoy stores `name` as filter state `wasm.<name>`, readable by the access
/// log as `%FILTER_STATE(wasm.<name>:PLAIN)%`.
pub fn set_property(name: &str, value: &[u8]) -> Result<()> {
    // SAFETY: pointers and lengths describe live byte slices.
    check(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Metric kinds in the ABI's numbering.
pub const COUNTER: u32 = 0;
pub const HISTOGRAM: u32 = 2;

pub fn define_metric(kind: u32, name: &str) -> Result<u32> {
    let mut id = 0;
    // SAFETY: pointer and length describe a live slice; out-pointer valid for the call.
    check(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, by: i64) -> Result<()> {
    // SAFETY: plain values.
    check(unsafe { proxy_increment_metric(id, by) })
}

pub fn record_metric(id: u32, value: u64) -> Result<()> {
    // SAFETY: plain values.
    check(unsafe { proxy_record_metric(id, value) })
}

pub fn now_nanos() -> u64 {
    let mut t = 0u64;
    // SAFETY: out-pointer valid for the call. On failure `t` stays 0, which callers treat as
    // "the epoch": limits then err on refusing, not on admitting.
    let _ = unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_pairs_and_survives_truncation() {
        let mut b = Vec::new();
        b.extend_from_slice(&2u32.to_le_bytes());
        for (k, v) in [(5u32, 4u32), (1, 2)] {
            b.extend_from_slice(&k.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(b":path\0/x/y\0A\0\xff\xfe\0");
        let pairs = parse_pairs(&b);
        assert_eq!(
            pairs,
            vec![
                (":path".into(), b"/x/y".to_vec()),
                ("a".into(), vec![0xff, 0xfe])
            ]
        );
        for cut in 0..b.len() {
            let _ = parse_pairs(&b[..cut]);
        }
        assert!(parse_pairs(&[0xff, 0xff, 0xff, 0xff]).is_empty());
    }
}
