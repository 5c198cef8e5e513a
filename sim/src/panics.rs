//! The panics raised on this thread while a closure runs, each with its
//! place and simulated time. A panic in a host's task reaches the caller
//! only as tokio's own "a spawned task panicked" when it shuts the host's
//! runtime down, so the payload `catch_unwind` gets rarely names the first.

use std::cell::RefCell;
use std::panic::PanicHookInfo;
use std::sync::Once;

/// One panic: where, when (simulated ms, if inside a world) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Simulated ms, if the panic happened inside a running world.
    pub at_ms: Option<u64>,
    /// `file:line: message`.
    pub text: String,
}

/// Whether the panics seen while recording are also printed as usual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Printed by the hook installed before (with a backtrace if asked for).
    Print,
    /// Only recorded: a campaign reports them in its violations.
    Quiet,
}

/// What [`recording`] keeps on its thread while it runs.
struct Recording {
    output: Output,
    seen: Vec<Seen>,
}

thread_local! {
    /// `Some` while [`recording`] runs on this thread.
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// The text a panic carries, if it is a string.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "a panic without a message".into(),
    }
}

fn describe(info: &PanicHookInfo<'_>) -> Seen {
    let place = info.location().map(|l| format!("{}:{}: ", l.file(), l.line())).unwrap_or_default();
    let at_ms = turmoil::sim_elapsed().map(|d| d.as_millis() as u64);
    Seen { at_ms, text: format!("{place}{}", message(info.payload())) }
}

/// Chains a hook before the one installed (which still prints), once per process.
fn install() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let output = RECORDING
                .try_with(|r| {
                    let mut r = r.try_borrow_mut().ok()?;
                    let r = r.as_mut()?;
                    r.seen.push(describe(info));
                    Some(r.output)
                })
                .ok()
                .flatten();
            if output != Some(Output::Quiet) {
                previous(info);
            }
        }));
    });
}

/// Runs `f` and returns what it returned with the panics raised on this
/// thread meanwhile, in order. `f` should catch its own unwinding.
pub fn recording<R>(output: Output, f: impl FnOnce() -> R) -> (R, Vec<Seen>) {
    install();
    let outer = RECORDING.with(|r| r.replace(Some(Recording { output, seen: Vec::new() })));
    let result = f();
    let seen = RECORDING.with(|r| r.replace(outer)).map(|r| r.seen).unwrap_or_default();
    (result, seen)
}
