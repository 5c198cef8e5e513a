//! A bounded fuzz of shutdown orderings in `cargo test`: generated worlds
//! against the correct stack must give no violation. Failures are kept in
//! `proptest-regressions/` and printed as a scenario file with the command
//! that replays it. Long campaigns: `quiesce-sim fuzz`.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use quiesce_sim::fuzz::cases;
use quiesce_sim::{replay, Expect};

/// Cases per `cargo test`; CI's time budget, not coverage, sets it.
const CASES: u32 = 32;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: CASES,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("../proptest-regressions/fuzz.txt"))),
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_shutdown_orderings_break_no_invariant(case in cases()) {
        let scenario = case.scenario("fuzz-case", &[], Expect::Pass);
        let run = replay(&scenario);
        if !run.violations.is_empty() {
            let dir = std::env::temp_dir().join("quiesce-fuzz");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join(format!("fuzz-case-{}.json", scenario.seed));
            let _ = std::fs::write(&path, scenario.to_json());
            eprintln!("{}\nscenario written to {}\nreplay: cargo run -p quiesce-sim -- replay {} --trace",
                scenario.to_json(), path.display(), path.display());
        }
        prop_assert!(run.violations.is_empty(), "{}", run.verdict());
    }
}
