//! Every oracle must be able to fire: each test hands it a deliberately wrong
//! run record and checks that it names the right invariant. An oracle that
//! cannot fire would pass every run and prove nothing.

use quiesce::probe::{ConnKind, Probe, StopStep};
use quiesce::store::{JournalEntry, ObjectType, Origin, StoreSnapshot};
use quiesce_sim::oracles::{check, Invariant};
use quiesce_sim::record::{ConnectionEnd, Incarnation, Outcome, PeerMessage, RequestRecord, RunRecord};
use quiesce_sim::{Expect, Scenario};

fn scenario() -> Scenario {
    serde_json::from_value(serde_json::json!({
        "version": 1, "name": "hand-made", "seed": 7, "duration_ms": 60000,
        "nodes": [{"name": "api"}], "stop": {"node": "api", "at_ms": 1000},
        "expect": {"verdict": "pass"}
    }))
    .expect("a valid scenario")
}

fn stop_probes(at: u64) -> Vec<(u64, Probe)> {
    [
        StopStep::Begin,
        StopStep::TimersStopped,
        StopStep::AcceptorsClosed,
        StopStep::ListenerJoined,
        StopStep::JsonRpcDisconnected,
        StopStep::HttpClosing,
        StopStep::WorkJoinStarted,
        StopStep::WorkJoined,
        StopStep::Persisted,
        StopStep::Stopped,
    ]
    .into_iter()
    .map(|step| (at, Probe::Stop { step }))
    .collect()
}

/// A clean node that started at 0, stopped at 1000 and ended its tasks.
fn clean_incarnation() -> Incarnation {
    let mut probes = vec![(0, Probe::ListenerStarted { addr: "0.0.0.0:5665".into() })];
    probes.extend(stop_probes(1000));
    probes.insert(4, (1000, Probe::AcceptLoopExited { addr: "0.0.0.0:5665".into() }));
    Incarnation {
        started_ms: 0,
        probes,
        journal: vec![],
        stop_called_ms: Some(1000),
        stop_returned_ms: Some(1000),
        tasks_ended_ms: Some(1000),
        state_at_start: Some(StoreSnapshot::default()),
        state_at_stop: Some(StoreSnapshot::default()),
        crashed: false,
    }
}

fn record(inc: Incarnation) -> RunRecord {
    let mut r = RunRecord { scenario: "hand-made".into(), seed: 7, end_ms: 30_000, ..RunRecord::default() };
    r.nodes.insert("api".into(), vec![inc]);
    r
}

fn entry(seq: u64, ms: u64, request: &str, name: &str, after_seal: bool) -> JournalEntry {
    JournalEntry {
        seq,
        time: 1_767_225_600.0 + ms as f64 / 1000.0,
        origin: Origin::Http { conn: 1, request: 1, request_id: Some(request.into()), user: "root".into() },
        op: "modify",
        otype: ObjectType::Host,
        name: name.into(),
        after_seal,
    }
}

fn invariants(s: &Scenario, r: &RunRecord) -> Vec<Invariant> {
    check(s, r).into_iter().map(|v| v.invariant).collect()
}

#[test]
fn a_clean_record_passes_every_oracle() {
    let s = scenario();
    assert_eq!(invariants(&s, &record(clean_incarnation())), vec![]);
    assert!(matches!(s.expect, Expect::Pass));
}

#[test]
fn no_mutation_after_stop_fires_on_a_late_journal_entry() {
    let mut inc = clean_incarnation();
    inc.journal.push(entry(1, 1200, "c#1", "h1", true));
    assert!(invariants(&scenario(), &record(inc)).contains(&Invariant::NoMutationAfterStop));
}

#[test]
fn started_work_finishes_fires_on_a_guard_held_past_stop() {
    let mut inc = clean_incarnation();
    inc.probes.insert(1, (900, Probe::GateEntered { work: "http c1 r1 POST /v1/objects/hosts".into() }));
    assert!(invariants(&scenario(), &record(inc)).contains(&Invariant::StartedWorkFinishes));
}

#[test]
fn stop_bounded_fires_when_stop_is_slow_or_never_returns() {
    let mut slow = clean_incarnation();
    slow.stop_returned_ms = Some(5000);
    assert!(invariants(&scenario(), &record(slow)).contains(&Invariant::StopBounded));
    let mut hung = clean_incarnation();
    hung.stop_returned_ms = None;
    hung.tasks_ended_ms = None;
    assert!(invariants(&scenario(), &record(hung)).contains(&Invariant::StopBounded));
}

#[test]
fn listener_closed_fires_on_a_registration_after_close_and_on_a_spin() {
    let mut late = clean_incarnation();
    late.probes.push((1000, Probe::Registered { conn: 9, kind: ConnKind::Http }));
    late.probes.push((1001, Probe::Closed { conn: 9 }));
    assert!(invariants(&scenario(), &record(late)).contains(&Invariant::ListenerClosed));
    let mut spin = clean_incarnation();
    for t in 0..5 {
        spin.probes
            .push((1000 + t, Probe::AcceptError { addr: "0.0.0.0:5665".into(), error: "closed".into() }));
    }
    assert!(invariants(&scenario(), &record(spin)).contains(&Invariant::ListenerClosed));
    let mut no_exit = clean_incarnation();
    no_exit.probes.retain(|(_, p)| !matches!(p, Probe::AcceptLoopExited { .. }));
    assert!(invariants(&scenario(), &record(no_exit)).contains(&Invariant::ListenerClosed));
}

fn modify_request(status: u16, results: Vec<(&str, u16)>) -> RequestRecord {
    RequestRecord {
        id: "c#1".into(),
        node: "api".into(),
        method: "POST".into(),
        path: "/v1/objects/hosts".into(),
        modifying: true,
        objects: vec!["h1".into(), "h2".into()],
        sent_ms: 900,
        outcome: Outcome::Response {
            status,
            at_ms: 950,
            results: results.into_iter().map(|(n, c)| (n.to_string(), c)).collect(),
            text: String::new(),
        },
    }
}

#[test]
fn responses_tell_the_truth_fires_on_lies() {
    // 200 for h2, but the journal shows no change to it.
    let mut inc = clean_incarnation();
    inc.journal.push(entry(1, 950, "c#1", "h1", false));
    let mut r = record(inc.clone());
    r.requests.push(modify_request(200, vec![("h1", 200), ("h2", 200)]));
    assert!(invariants(&scenario(), &r).contains(&Invariant::ResponsesTellTheTruth));
    // Skipped h2 but 200 overall: the status must be 503.
    let mut r = record(inc);
    r.requests.push(modify_request(200, vec![("h1", 200), ("h2", 503)]));
    assert!(invariants(&scenario(), &r).contains(&Invariant::ResponsesTellTheTruth));
}

#[test]
fn nothing_acknowledged_is_lost_fires_on_lost_state_and_lost_messages() {
    let mut before = clean_incarnation();
    let snapshot: StoreSnapshot = serde_json::from_value(serde_json::json!({
        "objects": [{"type": "Host", "name": "h1", "attrs": {}}], "next_comment": 1
    }))
    .expect("snapshot");
    before.state_at_stop = Some(snapshot);
    let after = Incarnation { started_ms: 2000, ..clean_incarnation() };
    let mut r = record(before);
    r.nodes.get_mut("api").expect("node").push(after);
    assert!(invariants(&scenario(), &r).contains(&Invariant::NothingAcknowledgedIsLost));

    let mut s = scenario();
    s.restart = Some(quiesce_sim::scenario::RestartSpec { at_ms: 2000 });
    let mut r = record(clean_incarnation());
    r.peer_messages.push(PeerMessage {
        peer: "p".into(),
        node: "api".into(),
        ts: 5.0,
        host: "h1".into(),
        acknowledged: true,
        reads: true,
    });
    assert!(invariants(&s, &r).contains(&Invariant::NothingAcknowledgedIsLost));
}

#[test]
fn all_tasks_end_fires_on_a_task_left_running_and_a_lingering_idle_connection() {
    let mut inc = clean_incarnation();
    inc.tasks_ended_ms = None;
    inc.probes.push((500, Probe::Registered { conn: 3, kind: ConnKind::Endpoint }));
    inc.probes.sort_by_key(|(at, _)| *at);
    assert!(invariants(&scenario(), &record(inc)).contains(&Invariant::AllTasksEnd));
    // An idle connection registered before Stop and closed 10 s later.
    let mut inc = clean_incarnation();
    inc.probes.insert(1, (100, Probe::Accepted { conn: 5, peer: "192.168.0.9:49152".into() }));
    inc.probes.insert(2, (100, Probe::Registered { conn: 5, kind: ConnKind::Http }));
    let response =
        Probe::HttpResponse { conn: 5, request: 1, method: "GET".into(), path: "/v1".into(), status: 200 };
    inc.probes.insert(3, (110, response));
    inc.probes.push((11_000, Probe::Closed { conn: 5 }));
    let mut r = record(inc);
    r.connection_ends.push(ConnectionEnd {
        actor: "idler".into(),
        kind: "idle_keep_alive".into(),
        node: "api".into(),
        closed_ms: Some(11_000),
        local_addr: Some("192.168.0.9:49152".into()),
    });
    assert!(invariants(&scenario(), &r).contains(&Invariant::AllTasksEnd));
}

#[test]
fn no_panic_fires_on_a_panicked_task() {
    let mut inc = clean_incarnation();
    inc.probes.push((10, Probe::Panic { task: "connection".into(), message: "boom".into() }));
    assert!(invariants(&scenario(), &record(inc)).contains(&Invariant::NoPanic));
}

#[test]
fn the_canary_fires_only_on_seeds_divisible_by_1000() {
    let mut s = scenario();
    s.bugs = vec![quiesce::bugs::Bug::Canary];
    s.seed = 3000;
    assert!(invariants(&s, &record(clean_incarnation())).contains(&Invariant::Canary));
    s.seed = 3001;
    assert!(!invariants(&s, &record(clean_incarnation())).contains(&Invariant::Canary));
}
