//! What the roles' [`Env`] is made of inside Envoy: shared data, the clock, a random number and
//! the upstream endpoint, each read through [`abi`] and only when a role asks.

use crate::abi;
use std::cell::Cell;
use weir_core::roles::{Clock, Endpoint, Env};
use weir_core::store::{SharedStore, StoreError};

/// Shared data through the host, for the stages that keep cross-worker state.
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        abi::shared_get(key)
            .map_err(|e| StoreError::Other(format!("shared data get: status {}", e.0)))
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        abi::shared_set(key, value, cas).map_err(|e| match e.0 {
            abi::CAS_MISMATCH => StoreError::CasMismatch,
            s => StoreError::Other(format!("shared data set: status {s}")),
        })
    }
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A fast non-cryptographic random number (xorshift), seeded from the clock: it only spreads
/// load, it protects nothing.
fn random() -> u64 {
    RNG.with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = abi::now_nanos() | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        x
    })
}

/// The host clock of one callback: read on the first ask, then the same instant for the rest of
/// the callback.
#[derive(Default)]
pub struct HostClock(Cell<Option<u64>>);

impl Clock for HostClock {
    fn now_ms(&self) -> u64 {
        if let Some(t) = self.0.get() {
            return t;
        }
        let t = abi::now_nanos() / 1_000_000;
        self.0.set(Some(t));
        t
    }
}

/// The endpoint of this upstream attempt, through the host's properties, read when asked.
pub struct HostEndpoint;

impl Endpoint for HostEndpoint {
    fn provider(&self) -> Option<String> {
        abi::property_str(&[
            "xds",
            "upstream_host_metadata",
            "filter_metadata",
            "weir",
            "provider",
        ])
    }
}

/// The environment of one callback.
pub fn env<'a>(store: &'a HostStore, clock: &'a HostClock) -> Env<'a> {
    Env {
        clock,
        store,
        random: random(),
        endpoint: &HostEndpoint,
    }
}
