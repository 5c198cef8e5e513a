//! Replays every file in `scenarios/`: its verdict must be the expected one,
//! its trace must match the snapshot in `snapshots/`, and two runs of it in
//! this process must give the same trace, byte for byte.

use std::path::{Path, PathBuf};

use quiesce_sim::{replay, trace, Scenario};

fn scenario_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "scenarios/ must hold at least 12 scenarios, found {}", files.len());
    files
}

#[test]
fn every_scenario_gives_its_expected_verdict_and_trace() {
    let mut wrong = Vec::new();
    for path in scenario_files() {
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let run = replay(&s);
        if !run.matches(&s.expect) {
            wrong.push(format!("{}: expected {:?}, got:\n{}", s.name, s.expect, run.verdict()));
        }
        insta::with_settings!({
            snapshot_path => "../../snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(s.name.clone(), run.snapshot());
        });
    }
    assert!(wrong.is_empty(), "scenarios with the wrong verdict:\n{}", wrong.join("\n"));
}

#[test]
fn same_seed_gives_a_byte_identical_trace() {
    for path in scenario_files() {
        let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let first = trace::render(&replay(&s).record.trace);
        let second = trace::render(&replay(&s).record.trace);
        assert!(first == second, "scenario {} gave two different traces for seed {}", s.name, s.seed);
    }
}
