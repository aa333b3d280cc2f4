//! The plugin configuration parser and compiler (`Config::parse`) on arbitrary JSON; provider
//! keys given as `{"env": ...}` resolve to a fixed value. Must return Ok/Err, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = weir_core::config::Config::parse(data, &|name: &str| {
        (name.len() < 64).then(|| "secret".to_string())
    });
});
