//! The shared key-value store every worker VM of one Envoy sees (proxy-wasm shared data), as a
//! trait so limits, key rotation and health can be tested with [`MemStore`] and simulated races.
//!
//! Semantics follow Envoy's shared data exactly: `get` returns the value and a CAS token;
//! `set` with a non-zero CAS fails with [`StoreError::CasMismatch`] if the value changed since;
//! `set` with CAS 0 always writes (so creating a missing key is racy: callers seed keys they own
//! at configure time, or tolerate a lost first write). Values live until overwritten, so every key
//! a caller makes must come from a bounded set (config ids), never from client input.

use std::cell::RefCell;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    CasMismatch,
    Other(String),
}

pub trait SharedStore {
    /// The value and its CAS token; `(None, 0)` when the key does not exist.
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError>;
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError>;
}

/// How many times a read-modify-write retries on CAS mismatch before giving up.
pub const CAS_RETRIES: usize = 16;

/// Applies `f` to the current value with compare-and-swap, retrying on conflicts.
/// `f` gets the current bytes (None if missing) and returns the new bytes plus a result to hand
/// back, or `None` to leave the store untouched (the result is still returned).
pub fn update<T>(
    store: &dyn SharedStore,
    key: &str,
    mut f: impl FnMut(Option<&[u8]>) -> (Option<Vec<u8>>, T),
) -> Result<T, StoreError> {
    for _ in 0..CAS_RETRIES {
        let (current, cas) = store.get(key)?;
        let (next, result) = f(current.as_deref());
        match next {
            None => return Ok(result),
            Some(bytes) => match store.set(key, &bytes, cas) {
                Ok(()) => return Ok(result),
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(e),
            },
        }
    }
    Err(StoreError::CasMismatch)
}

/// An in-memory store with Envoy's CAS semantics, for tests. `interleave` lets a test run a
/// closure between a caller's `get` and `set`, to simulate another worker racing it.
#[derive(Default)]
pub struct MemStore {
    map: RefCell<hashbrown::HashMap<String, (Vec<u8>, u32)>>,
    next_cas: std::cell::Cell<u32>,
    #[allow(clippy::type_complexity)]
    interleave: RefCell<Option<Box<dyn FnMut(&MemStore)>>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }
    /// Runs `f` once, right after the next `get`.
    pub fn race_once(&self, f: impl FnMut(&MemStore) + 'static) {
        *self.interleave.borrow_mut() = Some(Box::new(f));
    }
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SharedStore for MemStore {
    fn get(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), StoreError> {
        let out = match self.map.borrow().get(key) {
            Some((v, cas)) => (Some(v.clone()), *cas),
            None => (None, 0),
        };
        let hook = self.interleave.borrow_mut().take();
        if let Some(mut hook) = hook {
            hook(self);
        }
        Ok(out)
    }
    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        let mut map = self.map.borrow_mut();
        if let Some((_, current)) = map.get(key) {
            if cas != 0 && cas != *current {
                return Err(StoreError::CasMismatch);
            }
        }
        let next = self.next_cas.get().wrapping_add(1).max(1);
        self.next_cas.set(next);
        map.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_retries_when_another_worker_wins_the_race() {
        let store = MemStore::new();
        store.set("k", b"1", 0).unwrap();
        store.race_once(|s| {
            let (_, cas) = s.get("k").unwrap();
            s.set("k", b"5", cas).unwrap();
        });
        let seen = update(&store, "k", |cur| {
            let n: u32 = std::str::from_utf8(cur.unwrap()).unwrap().parse().unwrap();
            (Some((n + 1).to_string().into_bytes()), n)
        })
        .unwrap();
        assert_eq!(seen, 5, "the retry must see the racing write");
        assert_eq!(store.get("k").unwrap().0.unwrap(), b"6");
    }
}
