//! quiesce-sim: the unchanged quiesce stack inside turmoil. A [`Scenario`]
//! builds a world of nodes and actors; [`replay`] runs it and checks every
//! oracle; the trace of a run is a function of its seed.

// turmoil seeds the branch order of tokio's `select!` only when tokio is
// built with `tokio_unstable`; without it a seed would not replay its trace,
// and every snapshot and fuzz failure would be a different run each time.
#[cfg(not(tokio_unstable))]
compile_error!(
    "quiesce-sim needs RUSTFLAGS=\"--cfg tokio_unstable\" (set in .cargo/config.toml): \
     without it turmoil cannot seed tokio's select!, and a seed does not replay its trace"
);

pub mod actors;
pub mod bench;
pub mod campaign;
pub mod env;
pub mod fuzz;
pub mod harness_fault;
mod lock;
pub mod oracles;
pub mod panics;
pub mod pki;
pub mod record;
pub mod recorder;
pub mod scenario;
pub mod timeline;
pub mod trace;
pub mod world;
pub mod zoo;

pub use oracles::{Invariant, Violation};
pub use record::RunRecord;
pub use scenario::{Expect, Scenario};

/// A finished run and what the oracles found.
pub struct Replay {
    /// What happened.
    pub record: RunRecord,
    /// Every broken invariant.
    pub violations: Vec<Violation>,
}

impl Replay {
    /// Whether the violations are what the scenario expects.
    pub fn matches(&self, expect: &Expect) -> bool {
        match expect {
            Expect::Pass => self.violations.is_empty(),
            Expect::Fail { invariant } => self.violations.iter().any(|v| v.invariant == *invariant),
        }
    }

    /// The verdict as text: `PASS` or each violation in full.
    pub fn verdict(&self) -> String {
        if self.violations.is_empty() {
            return "PASS\n".into();
        }
        self.violations.iter().map(|v| v.to_string()).collect()
    }

    /// The trace followed by the verdict: what snapshots hold.
    pub fn snapshot(&self) -> String {
        format!("{}--- verdict\n{}", trace::render(&self.record.trace), self.verdict())
    }
}

/// Runs a scenario like [`replay`], but a panic anywhere in the replay
/// (building the world, a node's main future, a task on a host, an actor,
/// the oracles) becomes a `no-panic` violation instead of unwinding into
/// the caller, which can go on with its next case. `output` says whether
/// panics are also printed as usual.
pub fn replay_catching_panics(scenario: &Scenario, output: panics::Output) -> Replay {
    let run = || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| replay(scenario)));
    let (result, seen) = panics::recording(output, run);
    let payload = match result {
        Ok(run) => return run,
        Err(payload) => payload,
    };
    let first = seen.first();
    let violation = Violation {
        invariant: Invariant::NoPanic,
        at_ms: first.and_then(|p| p.at_ms).unwrap_or(0),
        node: String::new(),
        message: format!(
            "the harness panicked while replaying the scenario: {}",
            first.map_or_else(|| panics::message(&*payload), |p| p.text.clone())
        ),
        evidence: seen.iter().map(|p| p.text.clone()).collect(),
    };
    let record = RunRecord { scenario: scenario.name.clone(), seed: scenario.seed, ..RunRecord::default() };
    Replay { record, violations: vec![violation] }
}

/// Runs a scenario and checks every oracle.
pub fn replay(scenario: &Scenario) -> Replay {
    let record = world::run(scenario);
    harness_fault::check(scenario, scenario::PanicSite::Oracles);
    let violations = oracles::check(scenario, &record);
    Replay { record, violations }
}
