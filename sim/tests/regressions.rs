//! Regression tests for bugs the stronger oracles found in the stack itself.

use quiesce_sim::{replay, Invariant, Scenario};

/// A repository scenario with its planted bugs switched off: the real stack.
fn correct_stack(file: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(file);
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    Scenario { bugs: vec![], ..s }
}

#[test]
fn json_rpc_writer_paused_before_a_message_writes_nothing_after_stop() {
    // Scenario: a log position is queued for a cluster peer and the writer
    // pauses before writing it (chaos at jsonrpc.before_write, 1.5 s); Stop
    // begins and returns during the pause.
    // Bug: the writer looked at Stop only before taking a message, not after
    // the pause, so it began writing the log position after Stop returned.
    // Fix: the writer looks at Stop again after the pause and stops at that
    // message boundary (src/jsonrpc/connection.rs, write_loop).
    let run = replay(&correct_stack("zoo-write-after-stop.json"));
    let late: Vec<_> = run.violations.iter().filter(|v| v.invariant == Invariant::SilentAfterStop).collect();
    assert!(late.is_empty(), "no JSON-RPC message may begin after Stop returned: {late:?}");
    assert!(run.violations.is_empty(), "the correct stack passes: {:?}", run.violations);
}
