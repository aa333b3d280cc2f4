//! The bounded, set-associative slot table the response cache keeps in shared data: a fixed set
//! of keys `weir:cache:<set>:<way>`, each holding at most one entry of at most `max_entry_bytes`.
//!
//! Shared data has no delete and keeps every value forever, so the table never creates a key
//! outside `sets × ways`: the memory it can ever hold is `sets × ways × max_entry_bytes` plus the
//! key names, whatever clients send. An entry's set is fixed by its key hash; inside the set a
//! new entry takes a free slot, else the one that expired first, else the oldest stored.
//!
//! Concurrency: a lookup only reads (a hit never writes, so hits cost no shared-data write and
//! cannot contend); an insert reads the whole set and writes the chosen slot with the CAS token
//! it read, and redoes the choice when another worker changed that slot meanwhile. A slot that
//! did not exist yet is written with CAS 0 (Envoy cannot CAS a key into existence), so two
//! workers filling the same empty slot at once keep one entry and lose the other: a lost cache
//! entry, never a torn one, because each value is written whole.

use crate::store::{SharedStore, StoreError, CAS_RETRIES};

/// Entry layout version; a value without it (another version, garbage) is a free slot.
const MAGIC: &[u8; 4] = b"WC1\0";
/// magic + hash + expires + stored + scope length.
const HEADER_BYTES: usize = 4 + 32 + 8 + 8 + 2;

/// The table's geometry, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub sets: u32,
    pub ways: u32,
    /// Largest value (header, scope and payload together) a slot may hold.
    pub max_entry_bytes: usize,
}

impl Geometry {
    /// The most bytes the table's values can occupy, ever.
    pub fn bound_bytes(&self) -> u64 {
        u64::from(self.sets) * u64::from(self.ways) * self.max_entry_bytes as u64
    }
}

/// One cached answer as it sits in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub hash: [u8; 32],
    /// Unix ms after which the entry is dead.
    pub expires_ms: u64,
    pub stored_ms: u64,
    /// Who may read it (`key:<id>`, `team:<name>`, `shared`); also in the hash, checked twice.
    pub scope: String,
    /// The IR response as JSON, PII still in placeholder form.
    pub payload: Vec<u8>,
}

impl Entry {
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.scope.len() + self.payload.len()
    }

    fn encode(&self) -> Option<Vec<u8>> {
        let scope_len = u16::try_from(self.scope.len()).ok()?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.hash);
        out.extend_from_slice(&self.expires_ms.to_le_bytes());
        out.extend_from_slice(&self.stored_ms.to_le_bytes());
        out.extend_from_slice(&scope_len.to_le_bytes());
        out.extend_from_slice(self.scope.as_bytes());
        out.extend_from_slice(&self.payload);
        Some(out)
    }

    /// The header only (hash, times, scope), without copying the payload.
    fn decode_head(bytes: &[u8]) -> Option<(Head, usize)> {
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let hash: [u8; 32] = rest.get(..32)?.try_into().ok()?;
        let expires_ms = u64::from_le_bytes(rest.get(32..40)?.try_into().ok()?);
        let stored_ms = u64::from_le_bytes(rest.get(40..48)?.try_into().ok()?);
        let scope_len = usize::from(u16::from_le_bytes(rest.get(48..50)?.try_into().ok()?));
        let scope_end = 50 + scope_len;
        let scope = std::str::from_utf8(rest.get(50..scope_end)?).ok()?;
        Some((
            Head {
                hash,
                expires_ms,
                stored_ms,
                scope: scope.to_string(),
            },
            MAGIC.len() + scope_end,
        ))
    }
}

struct Head {
    hash: [u8; 32],
    expires_ms: u64,
    stored_ms: u64,
    scope: String,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Written into a free or expired slot.
    Stored,
    /// Written over a live entry (the set was full).
    Evicted,
    /// A live entry for the same hash is already there (another worker stored it first).
    Present,
    /// Larger than `max_entry_bytes`: not cached.
    TooLarge,
}

/// The slot table over a shared store.
pub struct Table {
    pub geometry: Geometry,
}

impl Table {
    pub fn new(geometry: Geometry) -> Self {
        Table { geometry }
    }

    fn set_of(&self, hash: &[u8; 32]) -> u32 {
        let mut first = [0u8; 8];
        first.copy_from_slice(hash.get(..8).unwrap_or(&[0; 8]));
        (u64::from_le_bytes(first) % u64::from(self.geometry.sets.max(1))) as u32
    }

    /// The shared-data key of one slot; every key the cache ever uses is one of these.
    pub fn slot_key(set: u32, way: u32) -> String {
        format!("weir:cache:{set}:{way}")
    }

    /// The live entry for `hash` in `scope`: its payload and when it was stored.
    pub fn get(
        &self,
        store: &dyn SharedStore,
        now_ms: u64,
        hash: &[u8; 32],
        scope: &str,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let set = self.set_of(hash);
        for way in 0..self.geometry.ways {
            let (value, _) = store.get(&Self::slot_key(set, way))?;
            let Some(value) = value else { continue };
            let Some((head, body_at)) = Entry::decode_head(&value) else {
                continue;
            };
            if head.hash == *hash && head.scope == scope && head.expires_ms > now_ms {
                let payload = value.get(body_at..).unwrap_or_default().to_vec();
                return Ok(Some((payload, head.stored_ms)));
            }
        }
        Ok(None)
    }

    /// Stores `entry` in its set, evicting if the set is full.
    pub fn put(
        &self,
        store: &dyn SharedStore,
        now_ms: u64,
        entry: &Entry,
    ) -> Result<Put, StoreError> {
        if entry.encoded_len() > self.geometry.max_entry_bytes {
            return Ok(Put::TooLarge);
        }
        let Some(bytes) = entry.encode() else {
            return Ok(Put::TooLarge);
        };
        let set = self.set_of(&entry.hash);
        for _ in 0..CAS_RETRIES {
            // (way, cas, rank): lower rank is the better victim.
            let mut victim: Option<(u32, u32, (u8, u64))> = None;
            let mut live_victim = false;
            for way in 0..self.geometry.ways {
                let (value, cas) = store.get(&Self::slot_key(set, way))?;
                let head = value
                    .as_deref()
                    .and_then(Entry::decode_head)
                    .map(|(h, _)| h);
                let rank = match &head {
                    None => (0, 0),
                    Some(h) if h.expires_ms <= now_ms => (1, h.expires_ms),
                    Some(h) => {
                        if h.hash == entry.hash && h.scope == entry.scope {
                            return Ok(Put::Present);
                        }
                        (2, h.stored_ms)
                    }
                };
                if victim.map_or(true, |(_, _, best)| rank < best) {
                    victim = Some((way, cas, rank));
                    live_victim = rank.0 == 2;
                }
            }
            let Some((way, cas, _)) = victim else {
                return Ok(Put::TooLarge);
            };
            match store.set(&Self::slot_key(set, way), &bytes, cas) {
                Ok(()) => {
                    return Ok(if live_victim {
                        Put::Evicted
                    } else {
                        Put::Stored
                    })
                }
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::CasMismatch)
    }
}
