//! The per-sender limit of email in: at most N messages per sender address in any rolling
//! hour, counted in this process (each node of a cluster counts its own). A sender over it
//! is answered with a temporary failure, so a real sender's mail server tries again later
//! while a flood costs the flooder.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Senders remembered at most; the quietest are forgotten first when it is reached.
const MAX_SENDERS: usize = 10_000;
const WINDOW_SECS: i64 = 3600;

#[derive(Debug, Default)]
pub struct SenderRate {
    per_hour: u32,
    seen: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl SenderRate {
    /// `per_hour` = 0: no limit.
    pub fn new(per_hour: u32) -> SenderRate {
        SenderRate {
            per_hour,
            seen: Mutex::default(),
        }
    }

    /// Whether `sender` is below its limit now, without counting a message.
    pub fn allows(&self, sender: &str, now: i64) -> bool {
        if self.per_hour == 0 {
            return true;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        match seen.get_mut(&super::normalize_address(sender)) {
            Some(times) => {
                prune(times, now);
                times.len() < self.per_hour as usize
            }
            None => true,
        }
    }

    /// Counts one message of `sender`; false (and not counted) when it is over its limit.
    pub fn take(&self, sender: &str, now: i64) -> bool {
        if self.per_hour == 0 {
            return true;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        if seen.len() >= MAX_SENDERS {
            seen.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
            if seen.len() >= MAX_SENDERS {
                // Every one is active: forget the one whose last message is oldest.
                let oldest = seen
                    .iter()
                    .min_by_key(|(_, t)| t.back().copied().unwrap_or(0))
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    seen.remove(&k);
                }
            }
        }
        let times = seen.entry(super::normalize_address(sender)).or_default();
        prune(times, now);
        if times.len() >= self.per_hour as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

fn prune(times: &mut VecDeque<i64>, now: i64) {
    while times.front().is_some_and(|t| *t <= now - WINDOW_SECS) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_hour_per_sender() {
        let r = SenderRate::new(2);
        assert!(r.take("a@x.org", 100));
        assert!(r.take("A@X.org", 200));
        assert!(!r.allows("a@x.org", 300));
        assert!(!r.take("a@x.org", 300));
        assert!(r.take("b@x.org", 300));
        assert!(r.take("a@x.org", 100 + WINDOW_SECS));
        assert!(SenderRate::new(0).take("a@x.org", 0));
    }
}
