//! Every file in `scenarios/` is a test of its own, named after the
//! scenario: its verdict must be the expected one, its trace must match the
//! snapshot in `snapshots/`, and two runs of it in this process must give
//! the same trace, byte for byte.
//!
//! `cargo test -p quiesce-sim --test scenarios -- accept-after-close` runs
//! that one scenario (a filter that names a scenario exactly runs only it);
//! any other filter selects by substring as usual. A failing scenario does
//! not hide the others, and nextest can list and partition them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};
use quiesce_sim::{replay, trace, Scenario};

/// Fewer files than this in `scenarios/` means some went missing.
const MIN_SCENARIOS: usize = 12;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn scenario_files() -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

fn at_least_the_minimum(files: usize) -> Result<(), Failed> {
    if files < MIN_SCENARIOS {
        return Err(format!("scenarios/ must hold at least {MIN_SCENARIOS} scenarios, found {files}").into());
    }
    Ok(())
}

/// The test's name: the scenario's, or the file's stem if it does not load.
fn name_of(path: &Path) -> String {
    match Scenario::load(path) {
        Ok(s) => s.name,
        Err(_) => path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

fn check_scenario(path: &Path) -> Result<(), Failed> {
    let s = Scenario::load(path).map_err(|e| e.to_string())?;
    let run = replay(&s);
    if !run.matches(&s.expect) {
        return Err(format!("expected {:?}, got:\n{}", s.expect, run.verdict()).into());
    }
    insta::with_settings!({
        snapshot_path => "../../snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(s.name.clone(), run.snapshot());
    });
    let first = trace::render(&run.record.trace);
    let second = trace::render(&replay(&s).record.trace);
    if first != second {
        return Err(format!("two runs of seed {} gave two different traces", s.seed).into());
    }
    Ok(())
}

fn trials(files: &[PathBuf]) -> Vec<Trial> {
    let count = files.len();
    let mut trials =
        vec![Trial::test("scenarios_dir_holds_at_least_12", move || at_least_the_minimum(count))];
    for path in files {
        let path = path.clone();
        trials.push(Trial::test(name_of(&path), move || check_scenario(&path)));
    }
    trials
}

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    let files = match scenario_files() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("cannot read {}: {e}", scenarios_dir().display());
            return ExitCode::FAILURE;
        }
    };
    let trials = trials(&files);
    // `-- accept-after-close` means that scenario, not every name containing it.
    if args.filter.as_ref().is_some_and(|f| trials.iter().any(|t| t.name() == f)) {
        args.exact = true;
    }
    libtest_mimic::run(&args, trials).exit_code()
}
