//! The cache key: a SHA-256 over the model route, the reader's scope and the request as the
//! provider would see it (after PII scrubbing), with the fields that cannot change the answer left out.
//!
//! Why the scrubbed request: raw PII is never part of the key material, and two requests that
//! differ only in a value the scrubber replaced reach the provider as the same text, so they
//! rightly share an answer. The answer is therefore stored in placeholder form and each hit
//! restores it with its own request's vault (see `cache` module docs).

use crate::ir::Request;
use crate::routing::Target;
use sha2::{Digest, Sha256};

/// Bumped when the key material or the stored form changes, so old entries simply miss.
const KEY_VERSION: &[u8] = b"weir-cache-v1";

/// The request with everything that does not change the answer removed: whether it streams
/// (a hit is replayed in either form), the end-user id, Ollama's `keep_alive`, and an `extra`
/// family marker without extras.
pub fn normalised(req: &Request) -> Request {
    let mut req = req.clone();
    match &mut req {
        Request::Chat(c) => {
            c.stream = false;
            c.stream_include_usage = false;
            c.user = None;
            c.keep_alive = None;
            if c.extra.is_empty() {
                c.extra_family = None;
            }
        }
        Request::Embeddings(e) => e.user = None,
        // Never looked up (see `Cache::cacheable`).
        Request::CountTokens(_) => {}
    }
    req
}

/// The key hash of `req` on route `route` for readers in `scope`. Field order in the JSON is
/// fixed by the IR types and object keys are sorted (serde_json's map), so equal requests hash
/// equally whatever protocol or key order the client used. The route's targets (provider and
/// model) are part of the key, so pointing a route at another model starts a fresh cache
/// instead of serving the old model's answers until they expire.
pub fn hash(route: &str, targets: &[Target], scope: &str, req: &Request) -> Option<[u8; 32]> {
    let body = serde_json::to_vec(&normalised(req)).ok()?;
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part(KEY_VERSION);
    part(route.as_bytes());
    for t in targets {
        part(t.provider.as_bytes());
        part(t.model.as_deref().unwrap_or("").as_bytes());
    }
    part(scope.as_bytes());
    part(&body);
    Some(h.finalize().into())
}
