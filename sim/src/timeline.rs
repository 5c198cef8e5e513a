//! A picture of a run, as a self-contained SVG (or an HTML page around it).
//! It opens on Stop: from a little before Stop began to a little after its
//! node's last task ended, under a strip that shows the whole run. Rows show
//! nodes, connections, clients' requests and peers' messages; Stop's steps
//! and the violations are labelled lines whose labels never overlap, and
//! each violation is numbered as in the list of evidence under the picture.

mod conns;
mod draw;
mod layout;
mod model;
mod page;
mod peers;
mod svg;

use crate::oracles::Violation;
use crate::record::{Outcome, RunRecord};
use crate::scenario::Scenario;

/// The span of simulated time the picture's main view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Its first ms.
    pub from: u64,
    /// Its last ms.
    pub to: u64,
    /// When the first Stop was called, the origin of relative times.
    pub stop_ms: Option<u64>,
}

/// How far past the end of Stop an answer, a close or a violation may come
/// and still belong to Stop, at least.
const REACH_MIN_MS: u64 = 100;
/// The narrowest span the view shows.
const SPAN_MIN_MS: u64 = 100;

/// The span that matters first: every Stop, and what it caused soon after
/// (answers to requests in flight, connections closed, violations), with a
/// little room on both sides. A run without Stop, or whose Stop fills most
/// of it, is shown whole.
pub fn focus(record: &RunRecord, violations: &[Violation]) -> Window {
    let end = record.end_ms.max(1);
    let stopped = || record.nodes.values().flatten().filter(|i| i.stop_called_ms.is_some());
    let Some(called) = stopped().filter_map(|i| i.stop_called_ms).min() else {
        return Window { from: 0, to: end, stop_ms: None };
    };
    // A record made by hand may have times past its end; the view stays within the run.
    let begin = called.min(end);
    let settled =
        stopped().map(|i| i.tasks_ended_ms.unwrap_or(end).max(i.stop_returned_ms.unwrap_or(end))).max();
    let settled = settled.unwrap_or(end).clamp(begin, end);
    let reach = (settled - begin).max(REACH_MIN_MS);
    let caused = consequences(record, violations, begin, settled)
        .filter(|at| (begin..=settled.saturating_add(reach)).contains(at));
    let last = caused.fold(settled, u64::max).min(end);
    let pending = in_flight(record, begin).filter(|at| *at >= begin.saturating_sub(reach));
    let first = pending.fold(begin, u64::min);
    let span = (last - first).max(SPAN_MIN_MS);
    let from = first.saturating_sub((span / 8).max(5));
    let to = (last + (span / 20).max(3)).min(end);
    let from = from.min(to.saturating_sub(SPAN_MIN_MS));
    if u128::from(to - from) * 10 >= u128::from(end) * 8 {
        return Window { from: 0, to: end, stop_ms: Some(called) };
    }
    Window { from, to, stop_ms: Some(called) }
}

/// When what Stop found in flight was sent: requests not yet answered, and
/// peers' messages not yet applied.
fn in_flight(record: &RunRecord, begin: u64) -> impl Iterator<Item = u64> + '_ {
    let unanswered =
        record.requests.iter().filter(move |r| r.sent_ms < begin).filter(move |r| match r.outcome {
            Outcome::Response { at_ms, .. } | Outcome::TransportError { at_ms, .. } => at_ms >= begin,
            Outcome::NoAnswer => true,
        });
    unanswered.map(|r| r.sent_ms).chain(peers::unapplied_at(record, begin))
}

/// When things that Stop may have caused happened: answers to requests that
/// were in flight while it ran, connections the server closed, violations.
fn consequences<'a>(
    record: &'a RunRecord,
    violations: &'a [Violation],
    begin: u64,
    settled: u64,
) -> impl Iterator<Item = u64> + 'a {
    let answered =
        record.requests.iter().filter(move |r| r.sent_ms <= settled).filter_map(|r| match r.outcome {
            Outcome::Response { at_ms, .. } | Outcome::TransportError { at_ms, .. } => Some(at_ms),
            Outcome::NoAnswer => None,
        });
    let closed = record.connection_ends.iter().filter_map(|e| e.closed_ms);
    let broken = violations.iter().map(|v| v.at_ms);
    answered.chain(closed).chain(broken).filter(move |at| *at >= begin)
}

/// Renders the run; `html` wraps the picture in a page with the evidence
/// under it, and without it the evidence is drawn under the picture.
pub fn render(scenario: &Scenario, record: &RunRecord, violations: &[Violation], html: bool) -> String {
    let rows = model::rows(scenario, record);
    let steps = model::stop_steps(record);
    // Numbered in time order, so that the labels read left to right.
    let mut numbered: Vec<&Violation> = violations.iter().collect();
    numbered.sort_by_key(|v| v.at_ms);
    let scene = draw::Scene {
        title: format!("{} (seed {})", scenario.name, scenario.seed),
        rows: &rows,
        steps: &steps,
        violations: &numbered,
        window: focus(record, violations),
        end_ms: record.end_ms,
    };
    let svg = draw::Picture::draw(&scene, !html);
    if html {
        page::html(scenario, &svg, &numbered)
    } else {
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Incarnation;

    #[test]
    fn a_record_with_times_past_its_end_still_gets_a_window_inside_the_run() {
        // Scenario: a hand-made record whose Stop is called after the run's end.
        // Bug: working out the span around Stop subtracted past zero.
        // Fix: every time is taken within the run before the span is worked out.
        let inc =
            Incarnation { stop_called_ms: Some(900), stop_returned_ms: Some(50), ..Incarnation::default() };
        let record =
            RunRecord { end_ms: 500, nodes: [("api".to_string(), vec![inc])].into(), ..RunRecord::default() };
        let w = focus(&record, &[]);
        assert!(w.from <= w.to && w.to <= 500, "{w:?}");
        assert_eq!(w.stop_ms, Some(900));
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/stop-steps-idle-node.json");
        let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let doc = render(&scenario, &record, &[], false);
        assert!(doc.starts_with("<svg") && doc.ends_with("</svg>"));
    }
}
