//! A bounded fuzz of shutdown orderings in `cargo test`: generated worlds
//! against the correct stack must give no violation. The cases come from a
//! fixed seed, so every run (and CI) plays the same ones; set
//! `PROPTEST_RNG_SEED=<n>` to play others. Failures are kept in
//! `proptest-regressions/` and printed as a scenario file with the command
//! that replays it. Long campaigns: `quiesce-sim fuzz`.

use proptest::test_runner::{Config, FileFailurePersistence, RngSeed, TestError, TestRunner};
use quiesce_sim::fuzz::{cases, Case};
use quiesce_sim::{replay, Expect};

/// Cases per `cargo test`; CI's time budget, not coverage, sets it.
const CASES: u32 = 32;

/// The seed of the cases `cargo test` plays, unless `PROPTEST_RNG_SEED` names another.
const SEED: u64 = 2026;

/// The seed this run plays: proptest's environment variable, or [`SEED`].
fn seed() -> u64 {
    match Config::default().rng_seed {
        RngSeed::Fixed(n) => n,
        RngSeed::Random => SEED,
    }
}

fn config(seed: u64) -> Config {
    Config {
        cases: CASES,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "../proptest-regressions/fuzz.txt",
        ))),
        max_shrink_iters: 200,
        ..Config::default()
    }
}

/// Writes the failing case as a scenario file and says how to replay it.
fn report(case: &Case, reason: &str, seed: u64) -> String {
    let scenario = case.scenario("fuzz-case", &[], Expect::Pass);
    let dir = std::env::temp_dir().join("quiesce-fuzz");
    let path = dir.join(format!("fuzz-case-{}.json", scenario.seed));
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, scenario.to_json()));
    let file = match written {
        Ok(()) => format!("scenario written to {}", path.display()),
        Err(e) => format!("cannot write {}: {e}", path.display()),
    };
    format!(
        "fuzz seed {seed}: {reason}\n{}{file}\nreplay: cargo run -p quiesce-sim -- replay {} --trace",
        scenario.to_json(),
        path.display()
    )
}

#[test]
fn generated_shutdown_orderings_break_no_invariant() {
    let seed = seed();
    eprintln!("fuzz: {CASES} cases from seed {seed} (PROPTEST_RNG_SEED=<n> plays others)");
    let mut runner = TestRunner::new(config(seed));
    let result = runner.run(&cases(), |case| {
        let run = replay(&case.scenario("fuzz-case", &[], Expect::Pass));
        proptest::prop_assert!(run.violations.is_empty(), "{}", run.verdict());
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => panic!("{}", report(&case, &reason.to_string(), seed)),
        Err(TestError::Abort(reason)) => panic!("fuzz seed {seed}: aborted: {reason}"),
    }
}
