//! The picture of a run: a zoo failure's timeline names the broken
//! invariant, draws it as a line and shows Stop's steps.

use std::path::Path;

use quiesce_sim::{replay, timeline, Scenario};

fn zoo_run() -> (Scenario, quiesce_sim::Replay) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/zoo-http-handler-without-gate.json");
    let s = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let run = replay(&s);
    assert!(!run.violations.is_empty(), "the zoo scenario must fail for its picture to show a violation");
    (s, run)
}

#[test]
fn a_zoo_failure_timeline_shows_the_violation_and_stop_steps() {
    let (s, run) = zoo_run();
    let doc = timeline::render(&s, &run.record, &run.violations, true);
    assert!(doc.contains("<svg") && doc.contains("</svg>"), "the page must hold the picture");
    assert!(doc.contains(r#"class="violation""#), "the violation must be drawn as a line");
    let name = run.violations[0].invariant.name();
    assert!(doc.contains(&format!(r#"class="vlabel">{name}</text>"#)), "the line must be labelled {name}");
    assert!(doc.contains("stop "), "Stop's steps must be marked");
}

#[test]
fn labels_stay_inside_the_picture() {
    // Scenario: a violation at the very end of a run.
    // Bug: its label and the last time on the axis ran off the right edge.
    // Fix: both are anchored at their end near the right edge.
    let (s, mut run) = zoo_run();
    run.violations[0].at_ms = run.record.end_ms;
    let doc = timeline::render(&s, &run.record, &run.violations, false);
    assert!(doc.contains(r#"text-anchor="end" class="vlabel""#), "a late violation's label must turn left");
    let last = format!(r#"text-anchor="end" class="label">{} ms</text>"#, run.record.end_ms);
    assert!(doc.contains(&last), "the axis must end with the run's end, anchored inside");
}

#[test]
fn a_stop_step_at_the_end_is_labelled_inside_the_picture() {
    // Scenario: Stop returns at the very end of the run (a Stop that a
    // planted bug keeps waiting).
    // Bug: the label of its last step ran off the right edge.
    // Fix: a step near the right edge is labelled to its left.
    let (s, mut run) = zoo_run();
    let end = run.record.end_ms;
    let incarnations = run.record.nodes.values_mut().flatten();
    for inc in incarnations {
        for (at, p) in inc.probes.iter_mut() {
            if matches!(p, quiesce::probe::Probe::Stop { .. }) {
                *at = end;
            }
        }
    }
    let doc = timeline::render(&s, &run.record, &run.violations, false);
    let label = format!(r#"text-anchor="end" class="steplabel">stop {end} ms</text>"#);
    assert!(doc.contains(&label), "the last step's label must turn left");
}
