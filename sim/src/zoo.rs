//! The bug zoo, measured: each planted bug declares the invariants it must
//! break, a run counts as found only when one of those fires, and each
//! bug's scenario also runs with the bug off as a control that must pass.

use std::path::{Path, PathBuf};

use quiesce::bugs::Bug;

use crate::oracles::{Invariant, Violation};
use crate::scenario::{Expect, Scenario};

/// The invariants `bug` must break; a violation of any other one does not
/// count as finding it. A match without a catch-all, so a new bug must say.
pub fn targets(bug: Bug) -> &'static [Invariant] {
    use Invariant as I;
    match bug {
        Bug::AcceptAfterCloseRegistered | Bug::AcceptLoopAfterClose => &[I::ListenerClosed],
        Bug::NoRegistrationGate => &[I::ListenerClosed, I::AllTasksEnd],
        Bug::HttpHandlerWithoutGate | Bug::JsonRpcWithoutGate => {
            &[I::NoMutationAfterStop, I::SilentAfterStop]
        }
        Bug::GateCheckedOnce | Bug::WriterHoldsGate | Bug::GateHeldWhileWriting => &[I::StopBounded],
        Bug::RefusalGoodbyeHoldsListener => &[I::StopBounded],
        Bug::NoWriterTimeout => &[I::AllTasksEnd],
        Bug::ModifyAnswers200WhenSkipped => &[I::ResponsesTellTheTruth],
        Bug::DroppedMessagesAcknowledged => &[I::NothingAcknowledgedIsLost],
        Bug::IdleKeepAliveNotClosed => &[I::AllTasksEnd],
        Bug::HandlerTornAtStop => &[I::StartedWorkFinishes],
        Bug::WriteAfterStop => &[I::SilentAfterStop],
        Bug::EventStreamLeftOpen | Bug::StopForgetsAnonymous | Bug::TlsShutdownUncapped => &[I::AllTasksEnd],
        Bug::RenameWithoutFsync | Bug::PersistBeforeJoin => &[I::NothingAcknowledgedIsLost],
        // The tick's older snapshot lands after Stop's persist: what it
        // overwrote is lost, and if it lands after Stop returned, it is noise.
        Bug::TimerTickNotAwaited => &[I::NothingAcknowledgedIsLost, I::SilentAfterStop],
        Bug::Canary => &[I::Canary],
    }
}

/// Whether `violations` hold one of `bug`'s targets; the first such one.
pub fn hit(bug: Bug, violations: &[Violation]) -> Option<Invariant> {
    violations.iter().map(|v| v.invariant).find(|i| targets(bug).contains(i))
}

/// The kebab-case name of a bug.
pub fn name(bug: Bug) -> String {
    serde_json::to_value(bug).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// The scenario directory of the source tree this binary was built from.
pub fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// How `scenarios/zoo-<bug>.json` fared: with the bug on it must break one
/// of the bug's targets, and with the bug off (the control) it must pass.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ScenarioCheck {
    /// The target that fired with the bug on, if one did.
    pub on: Option<Invariant>,
    /// What the control broke (empty: it passed).
    pub control: Vec<Invariant>,
}

impl ScenarioCheck {
    /// Whether both halves hold.
    pub fn holds(&self) -> bool {
        self.on.is_some() && self.control.is_empty()
    }
}

/// Plays `bug`'s zoo scenario from `dir` with the bug on and with it off.
pub fn check_scenario(dir: &Path, bug: Bug) -> Result<ScenarioCheck, String> {
    let path = dir.join(format!("zoo-{}.json", name(bug)));
    let on = Scenario::load(&path).map_err(|e| e.to_string())?;
    let replay = |s: &Scenario| crate::replay_catching_panics(s, crate::panics::Output::Quiet).violations;
    let fired = hit(bug, &replay(&on));
    let off = control(&on);
    let control = replay(&off).into_iter().map(|v| v.invariant).collect();
    Ok(ScenarioCheck { on: fired, control })
}

/// The control of a zoo scenario: the same world with no bug, expected to pass.
pub fn control(s: &Scenario) -> Scenario {
    Scenario { bugs: vec![], expect: Expect::Pass, name: format!("{}-control", s.name), ..s.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_has_a_target() {
        for bug in Bug::ALL {
            assert!(!targets(bug).is_empty(), "{bug:?} must declare the invariants it breaks");
        }
    }
}
