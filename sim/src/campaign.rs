//! Long campaigns: fuzzing many generated schedules (in parallel and in
//! shards), and the bug zoo, which measures how fast the fuzzer finds each
//! planted bug.
#![expect(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "runs worlds on worker threads and measures wall time; no world sees either"
)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use proptest::strategy::ValueTree;
use quiesce::bugs::Bug;
use serde::Serialize;

use crate::fuzz::{case_tree, shrink, Case};
use crate::lock::{into_inner, lock};

use crate::oracles::{Invariant, Violation};
use crate::record::TraceLine;
use crate::scenario::{Expect, Scenario};
use crate::{panics, replay_catching_panics, trace, Replay};

/// Which slice of a campaign's case indices this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u64,
    /// How many shards there are.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("shard '{s}' is not i/n with i < n");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u64, u64) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// One generated schedule and what the oracles said.
pub struct CaseRun {
    /// The case index in the campaign.
    pub index: u64,
    /// The scenario it played.
    pub scenario: Scenario,
    /// What broke.
    pub violations: Vec<Violation>,
    /// The trace of the scenario's run (empty if the harness panicked).
    pub trace: Vec<TraceLine>,
}

fn case_name(seed: u64, index: u64) -> String {
    format!("fuzz-{seed}-{index}")
}

/// Attempts the shrinker makes on a failing case.
pub const SHRINK_BUDGET: usize = 200;

/// By default, one case in this many is run twice to check determinism.
pub const DETERMINISM_EVERY: u64 = 10;

/// Replays a scenario as a campaign does: a panic is a `no-panic`
/// violation, reported there rather than printed.
fn replay(s: &Scenario) -> Replay {
    replay_catching_panics(s, panics::Output::Quiet)
}

/// Plays one case with `bugs` on; a panic is a `no-panic` violation.
pub fn play(case: &Case, name: &str, bugs: &[Bug]) -> Vec<Violation> {
    let scenario = case.scenario(name, bugs, Expect::Pass);
    replay(&scenario).violations
}

/// Plays case `index` of campaign `seed`, and if it fails, shrinks it.
/// `None` if the generator produced no case (it has no filters, so never).
pub fn run_case(seed: u64, index: u64, bugs: &[Bug]) -> Option<CaseRun> {
    run_case_with(seed, index, &|case: &Case, name: &str| case.scenario(name, bugs, Expect::Pass))
}

/// [`run_case`] with the scenario of a case built by `make`. A panic while
/// replaying is a `no-panic` violation like any other, so a case whose
/// replay panics is shrunk and kept, never lost. A shrunk case with bugs on
/// expects the violation it shrank on.
pub fn run_case_with(seed: u64, index: u64, make: &dyn Fn(&Case, &str) -> Scenario) -> Option<CaseRun> {
    let name = case_name(seed, index);
    let mut tree = case_tree(seed, index).ok()?;
    let scenario = make(&tree.current(), &name);
    let run = replay(&scenario);
    let Some(first) = run.violations.first().map(|v| v.invariant) else {
        return Some(CaseRun { index, scenario, violations: run.violations, trace: run.record.trace });
    };
    let fails = |c: &Case| replay(&make(c, &name)).violations.iter().any(|v| v.invariant == first);
    let mut scenario = make(&shrink(&mut tree, SHRINK_BUDGET, fails), &name);
    if !scenario.bugs.is_empty() {
        scenario.expect = Expect::Fail { invariant: first };
    }
    let run = replay(&scenario);
    Some(CaseRun { index, scenario, violations: run.violations, trace: run.record.trace })
}

/// Settings of `quiesce-sim fuzz`.
pub struct FuzzOptions {
    /// How many cases the whole campaign has (over all shards).
    pub cases: u64,
    /// The campaign's seed.
    pub seed: u64,
    /// This process's shard.
    pub shard: Shard,
    /// Worker threads.
    pub jobs: usize,
    /// Where failing scenarios go.
    pub out: PathBuf,
    /// Planted bugs to switch on.
    pub bugs: Vec<Bug>,
    /// Run every n-th case (by index) twice and compare traces; 1: every
    /// case, 0: none.
    pub determinism_every: u64,
    /// Write `index digest` of every case's trace here (to compare processes).
    pub digests: Option<PathBuf>,
}

impl FuzzOptions {
    /// Whether case `index` is run a second time to check determinism.
    pub fn checks_determinism(&self, index: u64) -> bool {
        self.determinism_every > 0 && index.is_multiple_of(self.determinism_every)
    }
}

/// What a campaign found.
pub struct FuzzSummary {
    /// Cases run by this process.
    pub ran: u64,
    /// Cases of those run twice to check determinism.
    pub determinism_checked: u64,
    /// Failing cases, as written to `out`.
    pub failures: Vec<(PathBuf, Vec<Violation>)>,
    /// Wall time.
    pub wall: Duration,
    /// `(case index, trace digest)`, if asked for.
    pub digests: Vec<(u64, String)>,
    /// How many cases had each feature (see [`crate::fuzz::features`]).
    pub features: std::collections::BTreeMap<&'static str, u64>,
}

fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} schedules  {per_sec}  {msg}  [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message("violations: 0");
    bar
}

/// What the campaign does with case `index`: plays the scenario `make`
/// builds from it (shrinking it if it fails), runs it a second time if
/// `opts` picks it for the determinism check (a different trace is a
/// `deterministic` violation), and writes a failing scenario to `opts.out`.
/// Returns the run and the file written, if any.
pub fn fuzz_case(
    opts: &FuzzOptions,
    index: u64,
    make: &dyn Fn(&Case, &str) -> Scenario,
) -> Option<(CaseRun, Option<PathBuf>)> {
    let mut run = run_case_with(opts.seed, index, make)?;
    if run.violations.is_empty() && opts.checks_determinism(index) {
        let again = replay(&run.scenario);
        run.violations.extend(crate::oracles::deterministic(&run.trace, &again.record.trace));
    }
    let written = (!run.violations.is_empty()).then(|| write_failure(&opts.out, &run));
    Some((run, written))
}

/// Runs a fuzz campaign.
pub fn fuzz(opts: &FuzzOptions) -> std::io::Result<FuzzSummary> {
    std::fs::create_dir_all(&opts.out)?;
    let indices: Vec<u64> = (0..opts.cases).filter(|i| i % opts.shard.count == opts.shard.index).collect();
    let bar = progress(indices.len() as u64);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let digests = Mutex::new(Vec::new());
    let features = Mutex::new(std::collections::BTreeMap::new());
    let make = |case: &Case, name: &str| case.scenario(name, &opts.bugs, Expect::Pass);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs.max(1) {
            scope.spawn(|| loop {
                let Some(&index) = indices.get(next.fetch_add(1, Ordering::Relaxed)) else { return };
                if let Some((run, written)) = fuzz_case(opts, index, &make) {
                    let mut f = lock(&features);
                    crate::fuzz::features(&run.scenario)
                        .into_iter()
                        .for_each(|n| *f.entry(n).or_default() += 1);
                    if opts.checks_determinism(index) {
                        *f.entry("determinism").or_default() += 1;
                    }
                    drop(f);
                    if opts.digests.is_some() {
                        lock(&digests).push((index, trace::digest(&run.trace)));
                    }
                    if let Some(path) = written {
                        let mut f = lock(&failures);
                        f.push((path, run.violations));
                        bar.set_message(format!("violations: {}", f.len()));
                    }
                }
                bar.inc(1);
            });
        }
    });
    bar.finish();
    let mut failures = into_inner(failures);
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    let mut digests = into_inner(digests);
    digests.sort();
    if let Some(path) = &opts.digests {
        let text: String = digests.iter().map(|(i, d)| format!("{i} {d}\n")).collect();
        std::fs::write(path, text)?;
    }
    let determinism_checked = indices.iter().filter(|&&i| opts.checks_determinism(i)).count() as u64;
    let (ran, wall) = (indices.len() as u64, start.elapsed());
    let features = into_inner(features);
    Ok(FuzzSummary { ran, determinism_checked, failures, wall, digests, features })
}

/// Replays a scenario twice and reports a difference in the traces.
pub fn determinism(s: &Scenario) -> Option<Violation> {
    let (first, second) = (replay(s), replay(s));
    crate::oracles::deterministic(&first.record.trace, &second.record.trace)
}

/// Writes a failing case's scenario to `out`; returns its path.
pub fn write_failure(out: &Path, run: &CaseRun) -> PathBuf {
    let path = out.join(format!("{}.json", run.scenario.name));
    if let Err(e) = std::fs::write(&path, run.scenario.to_json()) {
        eprintln!("quiesce-sim: cannot write {}: {e}", path.display());
    }
    path
}

/// One row of the zoo table.
#[derive(Clone, Debug, Serialize)]
pub struct ZooRow {
    /// The planted bug.
    pub bug: Bug,
    /// Runs that found it.
    pub found: usize,
    /// Runs in all.
    pub runs: usize,
    /// Invariants that caught it, most frequent first.
    pub invariants: Vec<(Invariant, usize)>,
    /// Schedules to the first failure: median, over the runs that found it.
    pub median: Option<u64>,
    /// Schedules to the first failure: 95th percentile.
    pub p95: Option<u64>,
    /// Wall time for this bug, in seconds.
    pub wall_secs: f64,
    /// Actors + chaos rules + faults of the shrunk scenario (first find).
    pub shrunk_size: Option<usize>,
    /// The shrunk scenario's name, written to the zoo's output directory.
    pub example: Option<String>,
    /// The invariants the bug must break.
    pub targets: Vec<Invariant>,
    /// The bug's zoo scenario with the bug on and off (the control).
    pub scenario: Result<crate::zoo::ScenarioCheck, String>,
}

/// Settings of `quiesce-sim zoo`.
pub struct ZooOptions {
    /// Runs per bug, each from its own random start.
    pub runs: usize,
    /// Give up a run after this many schedules.
    pub max_schedules: u64,
    /// The zoo's base seed.
    pub seed: u64,
    /// Worker threads.
    pub jobs: usize,
    /// Where the shrunk example of each bug goes.
    pub out: PathBuf,
    /// Bugs to run (all if empty).
    pub bugs: Vec<Bug>,
    /// Where the `zoo-<bug>.json` scenarios are.
    pub scenarios: PathBuf,
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Schedules until the first run that breaks one of `bug`'s targets, and
/// the target it broke. A violation of another invariant does not count.
fn first_failure(bug: Bug, seed: u64, max: u64) -> Option<(u64, Invariant)> {
    (0..max).find_map(|i| {
        let case = case_tree(seed, i).ok()?.current();
        let v = play(&case, &case_name(seed, i), &[bug]);
        crate::zoo::hit(bug, &v).map(|inv| (i + 1, inv))
    })
}

/// Runs every planted bug against the fuzzer, and each bug's zoo scenario
/// with the bug on and off.
pub fn zoo(opts: &ZooOptions) -> std::io::Result<Vec<ZooRow>> {
    std::fs::create_dir_all(&opts.out)?;
    let bugs = if opts.bugs.is_empty() { all_bugs() } else { opts.bugs.clone() };
    let bar = progress((bugs.len() * opts.runs) as u64);
    let mut rows = Vec::new();
    for bug in bugs {
        let start = Instant::now();
        let seeds: Vec<u64> = (0..opts.runs as u64).map(|r| mix(opts.seed, bug as u64, r)).collect();
        let results = parallel(&seeds, opts.jobs, |&s| {
            let r = first_failure(bug, s, opts.max_schedules);
            bar.inc(1);
            r.map(|(n, inv)| (s, n, inv))
        });
        let example = results.iter().flatten().next().and_then(|&(s, n, _)| run_case(s, n - 1, &[bug]));
        if let Some(run) = &example {
            write_failure(&opts.out, run);
        }
        let mut row = zoo_row(bug, opts.runs, &results, start.elapsed(), example.as_ref());
        row.scenario = crate::zoo::check_scenario(&opts.scenarios, bug);
        rows.push(row);
    }
    bar.finish();
    Ok(rows)
}

/// Why the zoo failed, one line per bug: a bug never found by one of its
/// targets, a zoo scenario that does not break them, a control that fails.
pub fn zoo_failures(rows: &[ZooRow]) -> Vec<String> {
    let mut out = Vec::new();
    for r in rows {
        let name = crate::zoo::name(r.bug);
        if r.found == 0 {
            out.push(format!("{name}: no run broke one of its targets {:?}", r.targets));
        }
        match &r.scenario {
            Ok(check) if check.on.is_none() => {
                out.push(format!("{name}: its zoo scenario broke none of its targets"))
            }
            Ok(check) if !check.control.is_empty() => {
                out.push(format!("{name}: its control (the zoo scenario, bug off) broke {:?}", check.control))
            }
            Ok(_) => {}
            Err(e) => out.push(format!("{name}: its zoo scenario could not be loaded: {e}")),
        }
    }
    out
}

fn zoo_row(
    bug: Bug,
    runs: usize,
    results: &[Option<(u64, u64, Invariant)>],
    wall: Duration,
    ex: Option<&CaseRun>,
) -> ZooRow {
    let mut counts: Vec<u64> = results.iter().flatten().map(|&(_, n, _)| n).collect();
    counts.sort_unstable();
    let mut invariants: std::collections::BTreeMap<Invariant, usize> = Default::default();
    for &(_, _, inv) in results.iter().flatten() {
        *invariants.entry(inv).or_default() += 1;
    }
    let mut invariants: Vec<(Invariant, usize)> = invariants.into_iter().collect();
    invariants.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    ZooRow {
        bug,
        found: counts.len(),
        runs,
        invariants,
        median: percentile(&counts, 0.5),
        p95: percentile(&counts, 0.95),
        wall_secs: wall.as_secs_f64(),
        shrunk_size: ex.map(|r| r.scenario.actors.len() + r.scenario.chaos.len() + r.scenario.faults.len()),
        example: ex.map(|r| r.scenario.name.clone()),
        targets: crate::zoo::targets(bug).to_vec(),
        scenario: Err("not played".into()),
    }
}

/// Every planted bug, the canary last.
pub fn all_bugs() -> Vec<Bug> {
    Bug::ALL.to_vec()
}

/// A seed for run `r` of bug `b`: splitmix of the three.
pub fn mix(seed: u64, b: u64, r: u64) -> u64 {
    let mut z = seed ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ r.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps `f` over `items` with `jobs` threads, keeping the order.
pub fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { return };
                let r = f(item);
                *lock(&out[i]) = Some(r);
            });
        }
    });
    out.into_iter().filter_map(into_inner).collect()
}

/// The zoo as a text table.
pub fn zoo_table(rows: &[ZooRow]) -> String {
    let mut s = format!(
        "{:<34} {:>7} {:<28} {:>7} {:>5} {:>8} {:>7} {:<8}\n",
        "bug", "found", "caught by", "median", "p95", "wall s", "shrunk", "scenario"
    );
    for r in rows {
        let inv = r.invariants.first().map(|(i, _)| i.name()).unwrap_or_else(|| "-".into());
        let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        let name =
            serde_json::to_value(r.bug).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        s.push_str(&format!(
            "{:<34} {:>3}/{:<3} {:<28} {:>7} {:>5} {:>8.1} {:>7} {:<8}\n",
            name,
            r.found,
            r.runs,
            inv,
            opt(r.median),
            opt(r.p95),
            r.wall_secs,
            r.shrunk_size.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            match &r.scenario {
                Ok(c) if c.holds() => "ok",
                _ => "FAILED",
            }
        ));
    }
    s
}

/// A campaign seed from the clock, for runs that did not ask for one.
pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    mix(t.as_nanos() as u64, std::process::id() as u64, 0)
}
