//! Icinga's SOFT/HARD state machine: what one check result does to a
//! checkable's state, state type and attempt, as
//! `Checkable::ProcessCheckResult` (lib/icinga/checkable-check.cpp) decides it.
//!
//! States here are the checkable's own: a host's UP 0 and DOWN 1, a
//! service's OK 0 to UNKNOWN 3. Either is OK at 0.

/// SOFT or HARD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateType {
    /// Not yet confirmed: a problem still counting its attempts.
    Soft,
    /// Confirmed: every OK, and a problem seen `max_check_attempts` times.
    Hard,
}

impl StateType {
    /// The number the API answers: SOFT 0, HARD 1.
    pub fn number(self) -> i64 {
        match self {
            StateType::Soft => 0,
            StateType::Hard => 1,
        }
    }

    /// The type an attribute holds: 0 is SOFT, anything else HARD (state
    /// files written before the machine existed only ever held 1).
    pub fn from_number(n: Option<i64>) -> StateType {
        match n {
            Some(0) => StateType::Soft,
            _ => StateType::Hard,
        }
    }
}

/// The part of a checkable the machine reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The state (0 is OK or UP).
    pub state: i64,
    /// SOFT or HARD.
    pub state_type: StateType,
    /// `check_attempt`: which attempt of a SOFT problem this is, else 1.
    pub attempt: i64,
}

/// What one check result did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The checkable after the result.
    pub after: Checked,
    /// The state differs from the one before.
    pub state_change: bool,
    /// A HARD state was reached, or one HARD state became another: Icinga
    /// then sets `last_hard_state` and notifies.
    pub hard_change: bool,
}

impl Transition {
    /// Whether Icinga announces it (`OnStateChange`, the `StateChange`
    /// event): on a hard change, on a state change, and on every SOFT result.
    pub fn announced(&self) -> bool {
        self.hard_change || self.state_change || self.after.state_type == StateType::Soft
    }
}

/// What a result with `state` does to `before`, with `max_attempts`
/// attempts before a problem turns HARD. OK is always HARD and resets the
/// attempt; the first problem after OK is SOFT attempt 1; each further
/// problem while SOFT counts one attempt up; at `max_attempts` the problem
/// is HARD and the attempt 1 again; a HARD problem stays HARD.
pub fn next(before: Checked, state: i64, max_attempts: i64) -> Transition {
    let (old_ok, new_ok) = (before.state == 0, state == 0);
    let (state_type, attempt) = if new_ok {
        (StateType::Hard, 1)
    } else if old_ok {
        soft_or_hard(1, max_attempts)
    } else if before.state_type == StateType::Soft {
        soft_or_hard(before.attempt.saturating_add(1), max_attempts)
    } else {
        (StateType::Hard, 1)
    };
    let after = Checked { state, state_type, attempt };
    let state_change = before.state != state;
    let hard_change = state_type == StateType::Hard && (before.state_type == StateType::Soft || state_change);
    Transition { after, state_change, hard_change }
}

/// A problem at `attempt`: SOFT until the attempts are used up, then HARD
/// with the count starting over.
fn soft_or_hard(attempt: i64, max_attempts: i64) -> (StateType, i64) {
    if attempt >= max_attempts {
        (StateType::Hard, 1)
    } else {
        (StateType::Soft, attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StateType::{Hard, Soft};

    fn checked(state: i64, state_type: StateType, attempt: i64) -> Checked {
        Checked { state, state_type, attempt }
    }

    /// Feeds `states` to a checkable that starts as a new one (OK, SOFT)
    /// and returns each result's (state, type, attempt, hard change).
    fn run(states: &[i64], max: i64) -> Vec<(i64, StateType, i64, bool)> {
        let mut now = checked(0, Soft, 1);
        states
            .iter()
            .map(|&s| {
                let t = next(now, s, max);
                now = t.after;
                (s, t.after.state_type, t.after.attempt, t.hard_change)
            })
            .collect()
    }

    #[test]
    fn a_problem_is_soft_until_max_check_attempts_then_hard() {
        // Scenario: a host with the default max_check_attempts (3) goes DOWN
        // and stays down, then comes back.
        // Bug: every result was HARD at once, so the first DOWN answered
        // state_type 1 where Icinga answers 0.
        // Fix: Icinga's state machine: SOFT 1, SOFT 2, then HARD.
        let seen = run(&[0, 1, 1, 1, 1, 0], 3);
        let expected = vec![
            (0, Hard, 1, true),
            (1, Soft, 1, false),
            (1, Soft, 2, false),
            (1, Hard, 1, true),
            (1, Hard, 1, false),
            (0, Hard, 1, true),
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_recovery_from_a_soft_problem_is_hard_ok_and_resets_the_attempt() {
        let seen = run(&[2, 2, 0, 2], 3);
        let expected =
            vec![(2, Soft, 1, false), (2, Soft, 2, false), (0, Hard, 1, true), (2, Soft, 1, false)];
        assert_eq!(seen, expected);
    }

    #[test]
    fn one_attempt_makes_every_problem_hard_at_once() {
        assert_eq!(run(&[1, 0], 1), vec![(1, Hard, 1, true), (0, Hard, 1, true)]);
    }

    #[test]
    fn a_soft_problem_that_changes_counts_on_and_a_hard_one_that_changes_is_a_hard_change() {
        // A service: WARNING, then CRITICAL while still SOFT, then HARD; then UNKNOWN.
        let seen = run(&[1, 2, 2, 3], 3);
        let expected = vec![(1, Soft, 1, false), (2, Soft, 2, false), (2, Hard, 1, true), (3, Hard, 1, true)];
        assert_eq!(seen, expected);
    }

    #[test]
    fn what_icinga_announces() {
        let ok = checked(0, Hard, 1);
        assert!(!next(ok, 0, 3).announced(), "OK after OK is not announced");
        assert!(next(ok, 2, 3).announced(), "a SOFT problem is");
        let soft = next(ok, 2, 3).after;
        assert!(next(soft, 2, 3).announced(), "and every SOFT repetition of it");
        let hard = next(checked(2, Soft, 2), 2, 3);
        assert!(hard.hard_change && hard.announced());
        assert!(!next(hard.after, 2, 3).announced(), "a HARD problem that stays is not");
    }

    #[test]
    fn a_state_type_is_soft_only_at_zero() {
        assert_eq!(StateType::from_number(Some(0)), Soft);
        assert_eq!(StateType::from_number(Some(1)), Hard);
        assert_eq!(StateType::from_number(None), Hard);
        assert_eq!((Soft.number(), Hard.number()), (0, 1));
    }

    #[test]
    fn an_attempt_count_at_its_limit_does_not_overflow() {
        let t = next(checked(1, Soft, i64::MAX), 1, i64::MAX);
        assert_eq!(t.after, checked(1, Hard, 1));
    }
}
