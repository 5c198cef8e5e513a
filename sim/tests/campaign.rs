//! The campaign runner keeps every case: a panic while replaying one is a
//! `no-panic` violation with its scenario written, a world that is not
//! deterministic is a `deterministic` violation, and a failing case is
//! shrunk to a smaller one that still fails.

use std::path::PathBuf;

use proptest::strategy::ValueTree;
use quiesce::bugs::Bug;
use quiesce_sim::campaign::{self, FuzzOptions, Shard};
use quiesce_sim::fuzz::{case_tree, shrink, Case};
use quiesce_sim::scenario::{HarnessFault, PanicSite};
use quiesce_sim::{panics, replay_catching_panics, trace, Expect, Invariant, Scenario};

/// The campaign every test here draws its cases from.
const SEED: u64 = 13;

/// An output directory of one test's own, removed when dropped.
struct Out(PathBuf);

impl Out {
    #[expect(clippy::disallowed_methods, reason = "a scratch directory per test process, outside any world")]
    fn new(test: &str) -> Out {
        let dir = std::env::temp_dir().join(format!("quiesce-campaign-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Out(dir)
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(out: &Out, determinism_every: u64) -> FuzzOptions {
    let (shard, out) = (Shard { index: 0, count: 1 }, out.0.clone());
    FuzzOptions { cases: 1, seed: SEED, shard, jobs: 1, out, bugs: vec![], determinism_every, digests: None }
}

/// A case's scenario cut to its first 400 ms, so that each replay (and each
/// shrinking step) is quick, with `fault` planted in the harness.
fn short(case: &Case, name: &str, fault: Option<HarnessFault>) -> Scenario {
    let mut s = case.scenario(name, &[], Expect::Pass);
    s.duration_ms = 400;
    s.harness_fault = fault;
    s
}

#[test]
fn a_panic_anywhere_in_a_replay_becomes_a_no_panic_violation_with_its_scenario_written() {
    for site in PanicSite::ALL {
        let out = Out::new(&format!("{site:?}"));
        let fault = Some(HarnessFault::Panic { site, at_ms: 100 });
        let make = |c: &Case, name: &str| short(c, name, fault);
        let (run, written) = campaign::fuzz_case(&options(&out, 0), 0, &make).expect("a case");
        let v = run.violations.first().expect("the panic is a violation");
        assert_eq!(v.invariant, Invariant::NoPanic, "{site:?}: {v}");
        assert!(v.message.contains(&format!("{site:?}")), "{site:?}: the violation names the panic: {v}");
        let path = written.expect("the failing case is written to --out");
        let kept = Scenario::load(&path).expect("the written scenario loads");
        assert_eq!(kept.harness_fault, fault, "{site:?}: the file keeps what made it panic");
        let again = replay_catching_panics(&kept, panics::Output::Quiet);
        assert!(again.violations.iter().any(|v| v.invariant == Invariant::NoPanic), "{site:?}: it replays");
    }
}

#[test]
fn a_case_after_one_that_panicked_replays_as_on_a_fresh_thread() {
    let out = Out::new("after-panic");
    let opts = options(&out, 0);
    let panicking = Some(HarnessFault::Panic { site: PanicSite::NodeMain, at_ms: 100 });
    let (first, _) = campaign::fuzz_case(&opts, 0, &|c, n| short(c, n, panicking)).expect("a case");
    assert_eq!(first.violations.first().map(|v| v.invariant), Some(Invariant::NoPanic));
    let clean = |c: &Case, n: &str| short(c, n, None);
    let (next, _) = campaign::fuzz_case(&opts, 1, &clean).expect("a case");
    #[expect(clippy::disallowed_methods, reason = "a fresh thread is what the case is compared with")]
    let fresh = std::thread::spawn(move || campaign::fuzz_case(&options(&Out::new("fresh"), 0), 1, &clean));
    let fresh = fresh.join().expect("no panic").expect("a case");
    assert!(!next.trace.is_empty(), "the next case ran");
    assert_eq!(trace::render(&next.trace), trace::render(&fresh.0.trace));
}

#[test]
fn a_nondeterministic_world_is_a_deterministic_violation_with_its_scenario_written() {
    let out = Out::new("nondeterministic");
    let make = |c: &Case, n: &str| short(c, n, Some(HarnessFault::Nondeterministic));
    let opts = options(&out, 10);
    // Case 3 is not in the share of one in ten; case 10 is.
    let (unchecked, written) = campaign::fuzz_case(&opts, 3, &make).expect("a case");
    assert!(unchecked.violations.is_empty() && written.is_none(), "{:?}", unchecked.violations);
    let (checked, written) = campaign::fuzz_case(&opts, 10, &make).expect("a case");
    let kinds: Vec<Invariant> = checked.violations.iter().map(|v| v.invariant).collect();
    assert_eq!(kinds, vec![Invariant::Deterministic]);
    let kept = Scenario::load(&written.expect("written to --out")).expect("the written scenario loads");
    assert_eq!(kept.harness_fault, Some(HarnessFault::Nondeterministic));
}

#[test]
fn shrinking_a_failing_case_leaves_a_smaller_case_that_still_fails() {
    let bug = [Bug::HttpHandlerWithoutGate];
    let name = "shrink";
    let play = |c: &Case| replay_catching_panics(&fast(c, name, &bug), panics::Output::Quiet).violations;
    // The first of the campaign's cases with something to shrink (and no
    // restart, whose time alone takes a dozen steps) that the bug breaks.
    let shrinkable = |c: &Case| c.size() >= 3 && c.scenario(name, &bug, Expect::Pass).restart.is_none();
    let (index, invariant) = (0..60)
        .filter(|&i| shrinkable(&case_tree(SEED, i).expect("a case").current()))
        .find_map(|i| Some((i, play(&case_tree(SEED, i).ok()?.current()).first()?.invariant)))
        .expect("the planted bug breaks one of the first 60 cases");
    let mut tree = case_tree(SEED, index).expect("a case");
    let original = tree.current();
    let smallest = shrink(&mut tree, 40, |c| play(c).iter().any(|v| v.invariant == invariant));
    assert!(smallest.size() < original.size(), "{} things, as many as the original", smallest.size());
    assert!(play(&smallest).iter().any(|v| v.invariant == invariant), "the shrunk case still fails");
}

/// A case's scenario with `bugs` on, ending 3 s after Stop (or a restart).
fn fast(case: &Case, name: &str, bugs: &[Bug]) -> Scenario {
    let mut s = case.scenario(name, bugs, Expect::Pass);
    s.duration_ms = s.restart.as_ref().map_or(s.stop.at_ms, |r| r.at_ms) + 3_000;
    s
}
