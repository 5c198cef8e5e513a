//! `quiesce-sim`: replay scenarios (and, later, run campaigns).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use quiesce_sim::{replay, trace, Scenario};

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
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Replay { file, trace: with_trace } => replay_file(&file, with_trace),
    }
}

fn replay_file(file: &std::path::Path, with_trace: bool) -> ExitCode {
    let scenario = match Scenario::load(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("quiesce-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let run = replay(&scenario);
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
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    if run.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
