//! `quiesce-sim`: replay scenarios, fuzz shutdown orderings, run the bug
//! zoo, and measure the simulation's speed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quiesce::bugs::Bug;
use quiesce_sim::campaign::{self, FuzzOptions, Shard, ZooOptions};
use quiesce_sim::{bench, panics, replay_catching_panics, timeline, trace, Scenario};

// A simulation allocates and frees small objects at a high rate on one
// thread; mimalloc roughly halves what glibc's malloc costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Deterministic simulation of quiesce's shutdown.
#[derive(Parser)]
#[command(name = "quiesce-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario file and print its verdict (exit 1 on a violation).
    Replay {
        /// The scenario file.
        file: PathBuf,
        /// Print the trace before the verdict.
        #[arg(long)]
        trace: bool,
        /// Write a picture of the run (SVG, or HTML wrapping it if the name ends in .html).
        #[arg(long, value_name = "FILE")]
        timeline: Option<PathBuf>,
    },
    /// Fuzz shutdown orderings with generated scenarios (exit 1 on a violation).
    Fuzz {
        /// Cases in the whole campaign (over all shards).
        #[arg(long, default_value_t = 1000)]
        cases: u64,
        /// The campaign seed (default: from the clock, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Run only shard i of n (case index mod n == i).
        #[arg(long, default_value = "0/1")]
        shard: Shard,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Where failing scenarios are written.
        #[arg(long, default_value = "fuzz-failures")]
        out: PathBuf,
        /// Switch on a planted bug (repeatable; kebab-case name).
        #[arg(long = "bug", value_parser = parse_bug)]
        bugs: Vec<Bug>,
        /// Run every case twice and compare the traces (by default one case in
        /// --determinism-every is).
        #[arg(long)]
        check_determinism: bool,
        /// Run every n-th case (by index) twice and compare the traces; 0: none.
        #[arg(long, value_name = "N", default_value_t = campaign::DETERMINISM_EVERY, conflicts_with = "check_determinism")]
        determinism_every: u64,
        /// Write each case's trace digest to FILE (compare two processes with diff).
        #[arg(long, value_name = "FILE")]
        digests: Option<PathBuf>,
    },
    /// Run every planted bug against the fuzzer and tabulate how fast it is found.
    Zoo {
        /// Runs per bug, each from its own random start.
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Give up a run after this many schedules.
        #[arg(long, default_value_t = 500)]
        max_schedules: u64,
        /// The zoo's seed (default: from the clock, printed).
        #[arg(long)]
        seed: Option<u64>,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Also write the table as JSON.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Where each bug's shrunk example scenario goes.
        #[arg(long, default_value = "zoo-examples")]
        out: PathBuf,
        /// Only these bugs (repeatable).
        #[arg(long = "bug", value_parser = parse_bug)]
        bugs: Vec<Bug>,
        /// Where the zoo-<bug>.json scenarios (played with the bug on and off) are.
        #[arg(long, value_name = "DIR", default_value_os_t = quiesce_sim::zoo::scenarios_dir())]
        scenarios: PathBuf,
    },
    /// Cases per second per core and simulated-to-wall ratio: the fuzz generator's cases and the standard scenario, each beside its floor.
    Bench {
        /// Schedules of each kind to run (100 batches by default: enough for
        /// a median that holds still on a shared machine).
        #[arg(long, default_value_t = 1000)]
        schedules: u64,
        /// Play only the standard scenario, no floor (for profiling).
        #[arg(long, conflicts_with = "fuzz_only")]
        standard_only: bool,
        /// Play only the fuzz generator's cases and their floor.
        #[arg(long)]
        fuzz_only: bool,
    },
}

fn parse_bug(s: &str) -> Result<Bug, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        let names: Vec<String> = campaign::all_bugs()
            .into_iter()
            .filter_map(|b| serde_json::to_value(b).ok()?.as_str().map(String::from))
            .collect();
        format!("unknown bug '{s}'; known: {}", names.join(", "))
    })
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Replay { file, trace, timeline } => replay_file(&file, trace, timeline.as_deref()),
        Command::Fuzz {
            cases,
            seed,
            shard,
            jobs,
            out,
            bugs,
            check_determinism,
            determinism_every,
            digests,
        } => {
            let seed = seed.unwrap_or_else(campaign::fresh_seed);
            let determinism_every = if check_determinism { 1 } else { determinism_every };
            fuzz(FuzzOptions { cases, seed, shard, jobs, out, bugs, determinism_every, digests })
        }
        Command::Zoo { runs, max_schedules, seed, jobs, json, out, bugs, scenarios } => {
            let seed = seed.unwrap_or_else(campaign::fresh_seed);
            zoo(ZooOptions { runs, max_schedules, seed, jobs, out, bugs, scenarios }, json.as_deref())
        }
        Command::Bench { schedules, standard_only: true, .. } => {
            print!("{}", bench::standard(schedules, bench::Load::Standard).line("standard"));
            ExitCode::SUCCESS
        }
        Command::Bench { schedules, fuzz_only: true, .. } => {
            let (fuzz, floor) = bench::fuzz_only(schedules);
            print!("{}{}", fuzz.line("fuzz"), floor.line("floor"));
            ExitCode::SUCCESS
        }
        Command::Bench { schedules, .. } => {
            print!("{}", bench::run(schedules).report());
            ExitCode::SUCCESS
        }
    }
}

fn print(out: &str) {
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
}

fn replay_file(file: &Path, with_trace: bool, picture: Option<&Path>) -> ExitCode {
    let scenario = match Scenario::load(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("quiesce-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let run = replay_catching_panics(&scenario, panics::Output::Print);
    let mut out = String::new();
    if with_trace {
        out.push_str(&trace::render(&run.record.trace));
        out.push_str(&format!("--- digest {}\n", trace::digest(&run.record.trace)));
    }
    out.push_str(&format!(
        "scenario {} (seed {}): {}\n",
        scenario.name,
        scenario.seed,
        run.verdict().trim_end()
    ));
    if !run.matches(&scenario.expect) {
        out.push_str(&format!("expected: {:?}\n", scenario.expect));
    }
    print(&out);
    if let Some(path) = picture {
        let html = path.extension().is_some_and(|e| e == "html");
        let doc = timeline::render(&scenario, &run.record, &run.violations, html);
        if let Err(e) = std::fs::write(path, doc) {
            eprintln!("quiesce-sim: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if run.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn fuzz(opts: FuzzOptions) -> ExitCode {
    let share = match opts.determinism_every {
        0 => "no case".to_string(),
        1 => "every case".to_string(),
        n => format!("1 case in {n}"),
    };
    eprintln!(
        "fuzz: {} cases, seed {}, shard {}/{}, {} jobs, bugs {:?}, determinism checked on {share}",
        opts.cases, opts.seed, opts.shard.index, opts.shard.count, opts.jobs, opts.bugs
    );
    let summary = match campaign::fuzz(&opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("quiesce-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let rate = summary.ran as f64 / summary.wall.as_secs_f64().max(1e-9);
    print(&format!(
        "{} schedules in {:.1} s ({rate:.0}/s), {} run twice for determinism, {} failing\n",
        summary.ran,
        summary.wall.as_secs_f64(),
        summary.determinism_checked,
        summary.failures.len()
    ));
    print(&feature_shares(&summary));
    for (path, violations) in &summary.failures {
        let mut text = format!("\nFAILED: {}\n", path.display());
        for v in violations {
            text.push_str(&v.to_string());
        }
        text.push_str(&format!(
            "replay: cargo run --release -p quiesce-sim -- replay {} --trace\n",
            path.display()
        ));
        print(&text);
    }
    if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The share of cases that had each feature, in the mix's words.
fn feature_shares(summary: &campaign::FuzzSummary) -> String {
    let mut text = String::from("share of cases with each feature:\n");
    let ran = summary.ran.max(1) as f64;
    for name in quiesce_sim::fuzz::FEATURE_NAMES {
        let n = summary.features.get(name).copied().unwrap_or(0);
        text.push_str(&format!("  {name:<32} {:>5.1}%  ({n})\n", 100.0 * n as f64 / ran));
    }
    text
}

fn zoo(opts: ZooOptions, json: Option<&Path>) -> ExitCode {
    eprintln!(
        "zoo: {} runs per bug, at most {} schedules each, seed {}",
        opts.runs, opts.max_schedules, opts.seed
    );
    let rows = match campaign::zoo(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("quiesce-sim: {e}");
            return ExitCode::from(2);
        }
    };
    print(&campaign::zoo_table(&rows));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&rows).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("quiesce-sim: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    let failures = campaign::zoo_failures(&rows);
    if failures.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!("zoo: FAILED\n  {}", failures.join("\n  "));
    ExitCode::FAILURE
}
