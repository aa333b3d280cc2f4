//! Metrics and the access-log record of a finished request: each metric series is defined with
//! the host once and found again by a lookup that allocates nothing.

use crate::abi;

/// A metric series as the id cache keeps it: the metric and its tag values (tag names are fixed
/// by the metric). Looked up with a borrowed [`SeriesRef`], so a request that only meets known
/// series allocates nothing and formats no name.
#[derive(PartialEq, Eq)]
struct SeriesKey {
    metric: &'static str,
    values: Vec<String>,
}

struct SeriesRef<'s, 'a> {
    metric: &'static str,
    tags: &'s weir_core::metrics::Tags<'a>,
}

impl std::hash::Hash for SeriesKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.metric.hash(h);
        for v in &self.values {
            v.as_str().hash(h);
        }
    }
}

impl std::hash::Hash for SeriesRef<'_, '_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.metric.hash(h);
        for (_, v) in self.tags {
            v.hash(h);
        }
    }
}

impl hashbrown::Equivalent<SeriesKey> for SeriesRef<'_, '_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        self.metric == key.metric
            && self.tags.len() == key.values.len()
            && self.tags.iter().zip(&key.values).all(|((_, v), k)| v == k)
    }
}

thread_local! {
    /// Metric ids by series, per VM. Tag values come only from configuration and fixed sets, so
    /// this is bounded by the configuration; `MAX_SERIES` guards against a configuration that is
    /// simply huge.
    static METRICS: std::cell::RefCell<hashbrown::HashMap<SeriesKey, u32>> = Default::default();
}

const MAX_SERIES: usize = 20_000;

/// The host's id for a sample's series, defining the metric the first time it is met.
fn metric_id(sample: &weir_core::metrics::Sample) -> Option<u32> {
    use weir_core::metrics::Kind;
    METRICS.with(|m| {
        let mut m = m.borrow_mut();
        let query = SeriesRef {
            metric: sample.metric,
            tags: sample.tags(),
        };
        if let Some(id) = m.get(&query) {
            return Some(*id);
        }
        if m.len() >= MAX_SERIES {
            return None;
        }
        let kind = match sample.kind {
            Kind::Counter => abi::COUNTER,
            Kind::Histogram => abi::HISTOGRAM,
        };
        let id = abi::define_metric(kind, &sample.series()).ok()?;
        let key = SeriesKey {
            metric: sample.metric,
            values: sample.tags().iter().map(|(_, v)| v.to_string()).collect(),
        };
        m.insert(key, id);
        Some(id)
    })
}

/// Records a finished request's metrics and leaves its summary for the access log
/// (`%FILTER_STATE(wasm.weir:PLAIN)%`).
pub fn report(summary: &weir_core::metrics::Summary) {
    use weir_core::metrics::Kind;
    for sample in summary.samples() {
        let Some(id) = metric_id(&sample) else {
            continue;
        };
        let _ = match sample.kind {
            Kind::Counter => {
                abi::increment_metric(id, i64::try_from(sample.value).unwrap_or(i64::MAX))
            }
            Kind::Histogram => abi::record_metric(id, sample.value),
        };
    }
    if let Err(e) = abi::set_property("weir", summary.to_json().as_bytes()) {
        log::debug!(
            "weir: could not publish the request summary (status {})",
            e.0
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_series_finds_the_key_it_was_stored_under() {
        let mut ids: hashbrown::HashMap<SeriesKey, u32> = hashbrown::HashMap::new();
        let tags = [("model", "gpt"), ("outcome", "success")];
        let key = SeriesKey {
            metric: "weir_requests_total",
            values: vec!["gpt".into(), "success".into()],
        };
        ids.insert(key, 7);
        let found = |metric, tags| ids.get(&SeriesRef { metric, tags }).copied();
        assert_eq!(found("weir_requests_total", &tags), Some(7));
        assert_eq!(found("weir_tokens_total", &tags), None);
        assert_eq!(found("weir_requests_total", &tags[..1]), None);
        assert_eq!(
            found(
                "weir_requests_total",
                &[("model", "gpt"), ("outcome", "denied")]
            ),
            None
        );
    }
}
