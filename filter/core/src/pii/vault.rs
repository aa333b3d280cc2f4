//! The per-request vault (placeholder → original), its own byte cap, and the per-VM byte budget
//! all live vaults share.
//!
//! Invariants: a vault's charge is exactly what it added to the budget and is released on Drop,
//! so the budget returns to zero when no request is in flight; no vault charges more than its
//! cap, so one request cannot spend the budget of every other request on its VM. When a new
//! entry does not fit either, nothing is stored and the caller redacts the value instead: the
//! value never leaves in clear, and the answer simply has nothing to restore for it. `Debug`
//! shows sizes, never contents.

use std::collections::HashMap;
use std::fmt;
use std::hash::RandomState;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Approximate per-entry bookkeeping (map slots, string headers) charged on top of the bytes.
const ENTRY_OVERHEAD: usize = 96;

/// Bytes held by the live vaults of one VM. A VM is single-threaded; the atomic only makes the
/// scrubber `Send + Sync` for whoever shares it.
pub(crate) struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    pub(crate) fn new(max: usize) -> Self {
        Budget {
            used: AtomicUsize::new(0),
            max,
        }
    }

    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn max(&self) -> usize {
        self.max
    }

    fn try_charge(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                cur.checked_add(n).filter(|v| *v <= self.max)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
                Some(cur.saturating_sub(n))
            });
    }
}

/// Placeholders of one request and the originals they stand for.
pub struct Vault {
    /// `<EMAIL_1>` → original.
    originals: HashMap<String, String>,
    /// Per label (one per detector, so few), original → placeholder: equal values share one
    /// placeholder, and a label's number of values is the last number it handed out.
    /// `entry_ref` finds or adds a value with one hash and no allocation when it is known.
    by_value: Vec<(String, hashbrown::HashMap<String, String, RandomState>)>,
    longest: usize,
    charged: usize,
    /// The most this vault may charge (`pii.vault_max_bytes_per_request`).
    cap: usize,
    budget: Option<Arc<Budget>>,
}

impl Vault {
    pub(crate) fn new(budget: Arc<Budget>, cap: usize) -> Self {
        Vault {
            originals: HashMap::new(),
            by_value: Vec::new(),
            longest: 0,
            charged: 0,
            cap,
            budget: Some(budget),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    /// Number of distinct placeholders.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    /// Bytes this vault charges against its VM's budget.
    pub fn charged_bytes(&self) -> usize {
        self.charged
    }

    /// Length in bytes of the longest placeholder: the most a stream restorer ever holds back.
    pub fn longest_placeholder(&self) -> usize {
        self.longest
    }

    pub(crate) fn lookup(&self, placeholder: &str) -> Option<&str> {
        self.originals.get(placeholder).map(String::as_str)
    }

    /// The placeholder for `value` under `label`, reusing an existing one; `None` when this
    /// vault's cap or the VM's budget cannot take a new entry. `value` is what detectors saw
    /// (the folded text, so one address typed two ways is one placeholder); `as_sent` is the
    /// client's text for it, which restore puts back (the first one seen, for a shared value).
    pub(crate) fn placeholder(&mut self, label: &str, value: &str, as_sent: &str) -> Option<&str> {
        let slot = match self.by_value.iter().position(|(l, _)| l == label) {
            Some(i) => i,
            None => {
                let values = hashbrown::HashMap::with_hasher(RandomState::new());
                self.by_value.push((label.to_string(), values));
                self.by_value.len() - 1
            }
        };
        let (_, values) = self.by_value.get_mut(slot)?;
        let n = values.len().saturating_add(1);
        match values.entry_ref(value) {
            hashbrown::hash_map::EntryRef::Occupied(known) => Some(known.into_mut().as_str()),
            hashbrown::hash_map::EntryRef::Vacant(new) => {
                let placeholder = format!("<{label}_{n}>");
                // Charged as a `label\0value` key, the placeholder twice and the text as sent.
                let cost = ENTRY_OVERHEAD
                    + label.len()
                    + 1
                    + value.len()
                    + as_sent.len()
                    + 2 * placeholder.len();
                if self.charged.saturating_add(cost) > self.cap {
                    return None;
                }
                if let Some(b) = &self.budget {
                    if !b.try_charge(cost) {
                        return None;
                    }
                }
                self.charged += cost;
                self.longest = self.longest.max(placeholder.len());
                self.originals
                    .insert(placeholder.clone(), as_sent.to_string());
                Some(new.insert(placeholder).as_str())
            }
        }
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.release(self.charged);
        }
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("entries", &self.originals.len())
            .field("charged_bytes", &self.charged)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_placeholder_and_budget_released_on_drop() {
        let budget = Arc::new(Budget::new(1 << 20));
        {
            let mut v = Vault::new(budget.clone(), usize::MAX);
            let a = v
                .placeholder("EMAIL", "a@x.com", "a@x.com")
                .unwrap()
                .to_string();
            let b = v
                .placeholder("EMAIL", "b@x.com", "b@x.com")
                .unwrap()
                .to_string();
            assert_eq!(a, "<EMAIL_1>");
            assert_eq!(b, "<EMAIL_2>");
            assert_eq!(v.placeholder("EMAIL", "a@x.com", "a@x.com").unwrap(), a);
            assert_eq!(v.placeholder("PHONE", "1", "1").unwrap(), "<PHONE_1>");
            assert_eq!(v.lookup("<EMAIL_2>"), Some("b@x.com"));
            assert!(budget.used() > 0);
            assert_eq!(budget.used(), v.charged_bytes());
            let dbg = format!("{v:?}");
            assert!(!dbg.contains("x.com"));
        }
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_full_budget_refuses_new_entries_but_keeps_old_ones() {
        let budget = Arc::new(Budget::new(300));
        let mut v1 = Vault::new(budget.clone(), usize::MAX);
        assert!(v1.placeholder("EMAIL", "a@x.com", "a@x.com").is_some());
        let mut v2 = Vault::new(budget.clone(), usize::MAX);
        assert!(v2.placeholder("EMAIL", "b@x.com", "b@x.com").is_some());
        // Third entry overflows the shared 300 bytes.
        assert!(v2.placeholder("EMAIL", "c@x.com", "c@x.com").is_none());
        assert!(v1.placeholder("EMAIL", "a@x.com", "a@x.com").is_some());
        drop(v1);
        assert!(v2.placeholder("EMAIL", "c@x.com", "c@x.com").is_some());
    }

    #[test]
    fn one_vault_stops_at_its_cap_and_leaves_the_budget_to_the_others() {
        let budget = Arc::new(Budget::new(10_000));
        let mut greedy = Vault::new(budget.clone(), 500);
        let mut stored = 0;
        while greedy
            .placeholder(
                "EMAIL",
                &format!("user{stored}@x.com"),
                &format!("user{stored}@x.com"),
            )
            .is_some()
        {
            stored += 1;
        }
        assert!(stored >= 2, "{stored}");
        assert!(greedy.charged_bytes() <= 500);
        assert_eq!(budget.used(), greedy.charged_bytes());
        // A value it already holds is still its placeholder.
        assert_eq!(
            greedy.placeholder("EMAIL", "user0@x.com", "user0@x.com"),
            Some("<EMAIL_1>")
        );
        let mut other = Vault::new(budget.clone(), 500);
        assert!(other.placeholder("EMAIL", "a@x.com", "a@x.com").is_some());
    }
}
