//! The counters of one limit subject, kept together in one shared-data value, and their compact
//! binary encoding. Pure data and arithmetic: the CAS loop and the policy live in `engine`.

/// Entries up to this far in the future are kept, because another worker's clock may run a little
/// ahead; anything further is dropped, so a host clock stepped backwards cannot wedge a window.
const FUTURE_SLACK_S: u64 = 60;

/// Bumped whenever the layout changes; a value of another version is discarded (counters restart)
/// rather than misread.
const VERSION: u8 = 1;

/// Bounds what a corrupt value can make us allocate; real lists hold at most 61 + slack entries
/// per window, and leases at most `concurrent_requests` entries.
const MAX_ENTRIES: u32 = 1 << 16;

/// Period scales for [`PeriodCounter`]; 0 is the default, which therefore always rolls over.
pub(crate) const SCALE_DAY: u8 = 1;
pub(crate) const SCALE_MONTH: u8 = 2;

/// Amounts bucketed by unix second, ascending, zero buckets removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Window {
    entries: Vec<(u64, u64)>,
}

/// When (unix ms) an entry made in second `sec` leaves a window that spans `span` seconds
/// before the current one.
pub(crate) fn leaves_at_ms(sec: u64, span: u64) -> u64 {
    sec.saturating_add(span)
        .saturating_add(1)
        .saturating_mul(1000)
}

impl Window {
    /// Drops entries older than `span` seconds before `now_s`, and implausible future ones.
    pub fn retain_live(&mut self, now_s: u64, span: u64) {
        self.entries.retain(|&(s, _)| {
            s.saturating_add(span) >= now_s && s <= now_s.saturating_add(FUTURE_SLACK_S)
        });
    }

    pub fn sum(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |acc, &(_, n)| acc.saturating_add(n))
    }

    pub fn add(&mut self, sec: u64, amount: u64) {
        if amount == 0 {
            return;
        }
        match self.entries.binary_search_by_key(&sec, |&(s, _)| s) {
            Ok(i) => {
                if let Some(e) = self.entries.get_mut(i) {
                    e.1 = e.1.saturating_add(amount);
                }
            }
            Err(i) => self.entries.insert(i, (sec, amount)),
        }
    }

    /// Takes back up to `amount` from second `sec`; a bucket that already left the window is
    /// gone, and so is whatever it held.
    pub fn sub(&mut self, sec: u64, amount: u64) {
        if let Ok(i) = self.entries.binary_search_by_key(&sec, |&(s, _)| s) {
            let empty = match self.entries.get_mut(i) {
                Some(e) => {
                    e.1 = e.1.saturating_sub(amount);
                    e.1 == 0
                }
                None => false,
            };
            if empty {
                self.entries.remove(i);
            }
        }
    }

    /// Milliseconds until `amount` more fits under `limit` as entries age out, or `None` when
    /// it never will (`amount > limit`).
    pub fn wait_ms(&self, limit: u64, amount: u64, span: u64, now_ms: u64) -> Option<u64> {
        if amount > limit {
            return None;
        }
        let mut held = self.sum();
        if held.saturating_add(amount) <= limit {
            return Some(0);
        }
        for &(s, n) in &self.entries {
            held = held.saturating_sub(n);
            if held.saturating_add(amount) <= limit {
                return Some(leaves_at_ms(s, span).saturating_sub(now_ms));
            }
        }
        // Unreachable: once every entry has aged out, `amount <= limit` fits.
        Some(1000)
    }

    /// Milliseconds until the window is empty again.
    pub fn reset_ms(&self, span: u64, now_ms: u64) -> u64 {
        self.entries
            .last()
            .map_or(0, |&(s, _)| leaves_at_ms(s, span).saturating_sub(now_ms))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A total for one calendar period (a UTC day or month).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PeriodCounter {
    pub scale: u8,
    pub period: u64,
    pub used: u64,
}

impl PeriodCounter {
    /// Moves to period `current`, starting from zero. It never moves backwards by one period,
    /// so two workers whose clocks straddle midnight cannot reset it twice; a counter further
    /// ahead than that means the clock was stepped back, and is restarted.
    pub fn roll(&mut self, scale: u8, current: u64) {
        if self.scale != scale || self.period < current || self.period > current.saturating_add(1) {
            *self = PeriodCounter {
                scale,
                period: current,
                used: 0,
            };
        }
    }

    /// Replaces a reservation of `reserved` made in period `period` with the `used` amount.
    /// Once that period is over a refund has nothing left to come out of, but an overrun is
    /// still charged, to the current period.
    pub fn settle(&mut self, scale: u8, period: u64, current: u64, reserved: u64, used: u64) {
        self.roll(scale, current);
        if self.period == period {
            self.used = self.used.saturating_sub(reserved).saturating_add(used);
        } else if used > reserved {
            self.used = self.used.saturating_add(used - reserved);
        }
    }
}

/// Everything counted for one subject (a key, a key on a model, a model, or global).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SubjectState {
    pub requests: Window,
    pub tokens: Window,
    pub leases: Window,
    pub day_tokens: PeriodCounter,
    pub spend: PeriodCounter,
}

impl SubjectState {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            1 + 16
                * (self.requests.entries.len()
                    + self.tokens.entries.len()
                    + self.leases.entries.len())
                + 12
                + 34,
        );
        out.push(VERSION);
        for w in [&self.requests, &self.tokens, &self.leases] {
            let n = u32::try_from(w.entries.len()).unwrap_or(MAX_ENTRIES);
            out.extend_from_slice(&n.to_le_bytes());
            for &(s, a) in w.entries.iter().take(MAX_ENTRIES as usize) {
                out.extend_from_slice(&s.to_le_bytes());
                out.extend_from_slice(&a.to_le_bytes());
            }
        }
        for c in [&self.day_tokens, &self.spend] {
            out.push(c.scale);
            out.extend_from_slice(&c.period.to_le_bytes());
            out.extend_from_slice(&c.used.to_le_bytes());
        }
        out
    }

    /// A missing value is a fresh subject; an unreadable one (another layout version) restarts
    /// from zero, which only this module's own writes could have produced.
    pub fn decode(bytes: Option<&[u8]>) -> SubjectState {
        let Some(bytes) = bytes else {
            return SubjectState::default();
        };
        match Self::try_decode(bytes) {
            Some(s) => s,
            None => {
                log::warn!("weir limits: discarding unreadable counter value");
                SubjectState::default()
            }
        }
    }

    fn try_decode(bytes: &[u8]) -> Option<SubjectState> {
        let mut r = Reader(bytes);
        if r.u8()? != VERSION {
            return None;
        }
        let requests = r.window()?;
        let tokens = r.window()?;
        let leases = r.window()?;
        let day_tokens = r.counter()?;
        let spend = r.counter()?;
        Some(SubjectState {
            requests,
            tokens,
            leases,
            day_tokens,
            spend,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }
    fn window(&mut self) -> Option<Window> {
        let n = self.u32()?;
        if n > MAX_ENTRIES {
            return None;
        }
        let mut entries: Vec<(u64, u64)> = Vec::with_capacity(n.min(64) as usize);
        for _ in 0..n {
            let s = self.u64()?;
            let a = self.u64()?;
            // Sortedness is what `binary_search` relies on; reject rather than trust it.
            if entries.last().is_some_and(|&(prev, _)| prev >= s) {
                return None;
            }
            entries.push((s, a));
        }
        Some(Window { entries })
    }
    fn counter(&mut self) -> Option<PeriodCounter> {
        Some(PeriodCounter {
            scale: self.u8()?,
            period: self.u64()?,
            used: self.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut s = SubjectState::default();
        s.requests.add(100, 2);
        s.requests.add(99, 1);
        s.tokens.add(100, 500);
        s.leases.add(98, 3);
        s.day_tokens.roll(SCALE_DAY, 7);
        s.day_tokens.used = 42;
        s.spend.roll(SCALE_MONTH, 9);
        let bytes = s.encode();
        assert_eq!(SubjectState::decode(Some(&bytes)), s);
        for cut in 0..bytes.len() {
            assert_eq!(
                SubjectState::decode(Some(&bytes[..cut])),
                SubjectState::default()
            );
        }
        assert_eq!(
            SubjectState::decode(Some(&[9, 9, 9])),
            SubjectState::default()
        );
        let mut huge = vec![VERSION];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(SubjectState::decode(Some(&huge)), SubjectState::default());
    }

    #[test]
    fn window_ages_out_and_reports_waits() {
        let mut w = Window::default();
        w.add(10, 3);
        w.add(20, 2);
        w.add(10, 1);
        assert_eq!(w.sum(), 6);
        // Second 10 leaves a 60-second-span window at 71.000.
        assert_eq!(w.wait_ms(6, 1, 60, 30_500), Some(40_500));
        assert_eq!(w.wait_ms(6, 5, 60, 30_500), Some(50_500));
        assert_eq!(w.wait_ms(6, 7, 60, 30_500), None);
        assert_eq!(w.reset_ms(60, 30_500), 50_500);
        w.retain_live(70, 60);
        assert_eq!(w.sum(), 6);
        w.retain_live(71, 60);
        assert_eq!(w.sum(), 2);
        w.sub(20, 5);
        assert_eq!(w.len(), 0);
        w.add(1_000, 1);
        w.retain_live(10, 60);
        assert_eq!(w.sum(), 0, "far-future entries are dropped");
    }

    #[test]
    fn period_counter_rolls_forward_only() {
        let mut c = PeriodCounter::default();
        c.roll(SCALE_DAY, 5);
        c.used = 10;
        c.roll(SCALE_DAY, 4);
        assert_eq!((c.period, c.used), (5, 10), "one period behind: kept");
        c.roll(SCALE_DAY, 6);
        assert_eq!((c.period, c.used), (6, 0));
        c.used = 10;
        c.roll(SCALE_MONTH, 6);
        assert_eq!(c.used, 0, "a scale change restarts");
        c.used = 10;
        c.settle(SCALE_MONTH, 6, 6, 4, 1);
        assert_eq!(c.used, 7);
        c.settle(SCALE_MONTH, 5, 6, 4, 9);
        assert_eq!(
            c.used, 12,
            "overrun of an old period lands in the current one"
        );
    }
}
