//! What a filter's evaluation costs: every step is counted against the
//! request's `filter_budget`, before the work it pays for is done.

use super::FilterError;

/// Bytes of text compared per step (`==`, `<`, dictionary keys, cache keys).
const TEXT_BYTES_PER_STEP: usize = 64;

/// Steps between two pauses of a long evaluation: about a millisecond of
/// work, so yielding costs little and no one waits long for the runtime.
pub const PAUSE_STEPS: u64 = 20_000;

/// The steps of one request (or of one event of an event stream).
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    spent: u64,
    since_pause: u64,
}

/// The steps that comparing `bytes` bytes of text costs, beyond its node.
pub(super) fn text_steps(bytes: usize) -> u64 {
    bytes.div_ceil(TEXT_BYTES_PER_STEP) as u64
}

impl Budget {
    /// A budget of `limit` steps.
    pub fn new(limit: u64) -> Budget {
        Budget { limit, spent: 0, since_pause: 0 }
    }

    /// Spends `steps`; past the limit it is an error, and stays one.
    pub fn charge(&mut self, steps: u64) -> Result<(), FilterError> {
        self.spent = self.spent.saturating_add(steps);
        self.since_pause = self.since_pause.saturating_add(steps);
        if self.spent > self.limit {
            return Err(FilterError::Budget { limit: self.limit });
        }
        Ok(())
    }

    #[cfg(test)]
    /// Steps spent so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// Whether [`PAUSE_STEPS`] have been spent since the last pause.
    pub fn pause_due(&self) -> bool {
        self.since_pause >= PAUSE_STEPS
    }

    /// Records a pause.
    pub fn paused(&mut self) {
        self.since_pause = 0;
    }

    /// The whole limit again, for an evaluation that does not add up with
    /// the previous ones (the next event of a stream).
    pub fn refill(&mut self) {
        self.spent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_inclusive_and_exceeding_it_stays_an_error() {
        let mut budget = Budget::new(10);
        assert!(budget.charge(10).is_ok());
        assert_eq!(budget.charge(1), Err(FilterError::Budget { limit: 10 }));
        assert!(budget.charge(0).is_err(), "spent is past the limit for good");
        budget.refill();
        assert!(budget.charge(10).is_ok());
    }

    #[test]
    fn pauses_come_every_pause_steps() {
        let mut budget = Budget::new(u64::MAX);
        budget.charge(PAUSE_STEPS - 1).unwrap();
        assert!(!budget.pause_due());
        budget.charge(1).unwrap();
        assert!(budget.pause_due());
        budget.paused();
        assert!(!budget.pause_due());
        assert_eq!(budget.spent(), PAUSE_STEPS);
    }
}
