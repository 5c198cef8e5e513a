//! `quiesce serve`: the API listener as a daemon; `quiesce pki`: its certificates.

use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser;
use quiesce::cli::{Cli, Command, PkiCommand};
use quiesce::env::tokio::TokioEnv;
use quiesce::listener::ApiListener;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version are not errors.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, as a supervisor logs it.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            eprintln!("quiesce: {first} (see '{}')", help_hint());
            return ExitCode::from(2);
        }
    };
    let args = match cli.command {
        Command::Serve(args) => args,
        Command::Pki(command) => return run_pki(&command),
    };
    init_logging();
    let mut config = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quiesce: {e}");
            return ExitCode::from(2);
        }
    };
    if !args.plain {
        match provision_tls(&config) {
            Ok(material) => config.tls = Some(material),
            Err(e) => {
                eprintln!("quiesce: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quiesce: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve(config));
    // Every task has ended or had its close cap (see `serve`); nothing is left to wait for.
    runtime.shutdown_background();
    code
}

/// The node's certificates: made on a first start (a CA and a certificate
/// for the node name, as `quiesce pki` would), then read.
fn provision_tls(config: &quiesce::config::Config) -> Result<quiesce::tls::TlsMaterial, String> {
    let provisioned = quiesce::pki::ensure_for_serve(&config.state_dir, &config.node_name, wall_clock())
        .map_err(|e| e.to_string())?;
    if let quiesce::pki::Provisioned::Created { .. } = provisioned {
        tracing::info!("{provisioned}");
    }
    quiesce::cli::load_tls(config)
}

/// Where a bad command line finds its flags: the subcommand's help.
fn help_hint() -> &'static str {
    match std::env::args().nth(1).as_deref() {
        Some("pki") => "quiesce pki --help",
        _ => "quiesce serve --help",
    }
}

/// Runs a `pki` command: the files written on stdout, or one error line and exit code 1.
fn run_pki(command: &PkiCommand) -> ExitCode {
    match command.run(wall_clock()) {
        Ok(written) => {
            println!("{written}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("quiesce: {e}");
            ExitCode::FAILURE
        }
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the pki commands run without the stack; the clock dates their certificates"
)]
fn wall_clock() -> SystemTime {
    SystemTime::now() // seam-ok: the pki commands date their certificates; no stack runs
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr).init();
}

async fn serve(config: quiesce::config::Config) -> ExitCode {
    // Registered before the listener binds: from the first moment a client
    // can connect, a signal means Stop, never the default abrupt exit.
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("quiesce: cannot wait for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tasks_cap = config.timings.writer_drain + config.timings.close_cap;
    let listener = match ApiListener::start(TokioEnv::new(), config).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("quiesce: {e}");
            return ExitCode::FAILURE;
        }
    };
    signals.recv().await;
    tracing::info!("Received request to shut down.");
    // A second signal means "now": exit without waiting for Stop.
    tokio::spawn(async move {
        signals.recv().await;
        eprintln!("quiesce: second signal, exiting at once");
        std::process::exit(130);
    });
    let stopped = listener.stop().await;
    // Responses to writes that Stop persisted are still being written: the
    // process ends once every task has, or once the close cap has passed.
    if tokio::time::timeout(tasks_cap, listener.wait_for_tasks()).await.is_err() {
        tracing::warn!("Some connections did not close within {tasks_cap:?} of Stop; exiting anyway.");
    }
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quiesce: Stop finished, but {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM and SIGINT, registered once so that no second signal is missed.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals)
    }

    async fn recv(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
