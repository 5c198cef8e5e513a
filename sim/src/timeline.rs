//! A picture of a run, as a self-contained SVG (or HTML around it): hosts and
//! connections over simulated time, Stop's steps, requests and their
//! outcomes, and the violations. Hovering an element shows its details.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quiesce::probe::{ConnKind, Probe};

use crate::oracles::Violation;
use crate::record::{Incarnation, Outcome, RunRecord};
use crate::scenario::Scenario;

const WIDTH: f64 = 1400.0;
const LEFT: f64 = 170.0;
const ROW: f64 = 22.0;
const TOP: f64 = 40.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

struct Canvas {
    end_ms: u64,
    body: String,
    rows: usize,
}

impl Canvas {
    fn x(&self, ms: u64) -> f64 {
        LEFT + (WIDTH - LEFT - 20.0) * ms as f64 / self.end_ms.max(1) as f64
    }

    fn row(&mut self, label: &str) -> f64 {
        let y = TOP + self.rows as f64 * ROW;
        self.rows += 1;
        let _ = write!(self.body, r#"<text x="6" y="{:.1}" class="label">{}</text>"#, y + 14.0, esc(label));
        y
    }

    fn bar(&mut self, y: f64, from: u64, to: u64, class: &str, tip: &str) {
        let (x0, x1) = (self.x(from), self.x(to.max(from)));
        let _ = write!(
            self.body,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" class="{class}"><title>{}</title></rect>"#,
            y + 4.0,
            (x1 - x0).max(2.0),
            ROW - 8.0,
            esc(tip)
        );
    }
}

/// Renders the run; `html` wraps the SVG in a page with the verdict.
pub fn render(scenario: &Scenario, record: &RunRecord, violations: &[Violation], html: bool) -> String {
    let mut c = Canvas { end_ms: record.end_ms.max(1), body: String::new(), rows: 0 };
    for (node, incs) in &record.nodes {
        node_rows(&mut c, node, incs, record.end_ms);
    }
    actor_rows(&mut c, record);
    let height = TOP + c.rows as f64 * ROW + 40.0;
    for (node, incs) in &record.nodes {
        for inc in incs {
            stop_markers(&mut c, node, inc, height);
        }
    }
    for v in violations {
        let x = c.x(v.at_ms);
        // Below the axis labels, and turned left near the right edge, so the
        // name never sits on a time or runs off the picture.
        let (label_x, anchor) = beside(x, WIDTH * 0.3, 3.0);
        let _ = write!(
            c.body,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" class="violation"><title>{}</title></line><text x="{label_x:.1}" y="{:.1}" text-anchor="{anchor}" class="vlabel">{}</text>"#,
            height - 30.0,
            esc(&v.to_string()),
            height - 4.0,
            esc(&v.invariant.name())
        );
    }
    axis(&mut c, height);
    let svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" font-family="monospace" font-size="11"><style>{STYLE}</style><text x="6" y="18" class="title">{}</text>{}</svg>"#,
        esc(&format!("{} (seed {}) — {} ms simulated", scenario.name, scenario.seed, record.end_ms)),
        c.body
    );
    if !html {
        return svg;
    }
    let verdict: String = if violations.is_empty() {
        "<p class=pass>PASS</p>".into()
    } else {
        violations.iter().map(|v| format!("<pre class=fail>{}</pre>", esc(&v.to_string()))).collect()
    };
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{}</title><style>body{{font-family:sans-serif}} pre{{white-space:pre-wrap}} .fail{{color:#b00}} .pass{{color:#070}}</style></head><body><h1>{}</h1><p>{}</p>{svg}<h2>Verdict</h2>{verdict}</body></html>\n",
        esc(&scenario.name),
        esc(&scenario.name),
        esc(&scenario.description)
    )
}

const STYLE: &str = ".label{fill:#222}.title{font-size:14px;font-weight:bold}.run{fill:#8c8}.stopping{fill:#f90}.down{fill:#ccc}.conn-http{fill:#69c}.conn-endpoint{fill:#96c}.conn-anonymous{fill:#c9c}.ok{fill:#4a4}.refused{fill:#f80}.err{fill:#d33}.lost{fill:#999}.step{stroke:#999;stroke-dasharray:3,3}.steplabel{fill:#666;font-size:9px}.violation{stroke:#d00;stroke-width:2}.vlabel{fill:#d00;font-weight:bold}.axis{stroke:#444}";

fn node_rows(c: &mut Canvas, node: &str, incs: &[Incarnation], end: u64) {
    let y = c.row(&format!("node {node}"));
    for (i, inc) in incs.iter().enumerate() {
        let stop_at = inc.stop_called_ms.unwrap_or(end);
        c.bar(
            y,
            inc.started_ms,
            stop_at,
            "run",
            &format!("incarnation {} running from {} ms", i + 1, inc.started_ms),
        );
        if let Some(called) = inc.stop_called_ms {
            let returned = inc.stop_returned_ms.unwrap_or(end);
            c.bar(
                y,
                called,
                returned,
                "stopping",
                &format!("Stop called at {called} ms, returned at {returned} ms"),
            );
        }
        conn_rows(c, node, inc, end);
    }
}

fn conn_rows(c: &mut Canvas, node: &str, inc: &Incarnation, end: u64) {
    let mut open: BTreeMap<u64, (u64, ConnKind)> = BTreeMap::new();
    let mut spans = Vec::new();
    for (at, p) in &inc.probes {
        match p {
            Probe::Registered { conn, kind } => {
                open.insert(*conn, (*at, *kind));
            }
            Probe::Closed { conn } => {
                if let Some((from, kind)) = open.remove(conn) {
                    spans.push((*conn, kind, from, *at));
                }
            }
            _ => {}
        }
    }
    spans.extend(open.into_iter().map(|(conn, (from, kind))| (conn, kind, from, end)));
    spans.sort_by_key(|s| (s.2, s.0));
    for (conn, kind, from, to) in spans {
        let class = match kind {
            ConnKind::Http => "conn-http",
            ConnKind::Endpoint => "conn-endpoint",
            ConnKind::Anonymous => "conn-anonymous",
        };
        let y = c.row(&format!("  {node} c{conn} {kind:?}"));
        c.bar(
            y,
            from,
            to,
            class,
            &format!("connection c{conn} ({kind:?}) registered {from} ms, closed {to} ms"),
        );
    }
}

fn actor_rows(c: &mut Canvas, record: &RunRecord) {
    let mut by_actor: BTreeMap<String, Vec<&crate::record::RequestRecord>> = BTreeMap::new();
    for r in &record.requests {
        let actor = r.id.split('#').next().unwrap_or(&r.id).to_string();
        by_actor.entry(actor).or_default().push(r);
    }
    for (actor, reqs) in by_actor {
        let y = c.row(&format!("client {actor}"));
        for r in reqs {
            let (to, class, what) = match &r.outcome {
                Outcome::Response { status, at_ms, results, text } => {
                    let class = match status {
                        200..=299 => "ok",
                        503 => "refused",
                        _ => "err",
                    };
                    (*at_ms, class, format!("{status} {text} {results:?}"))
                }
                Outcome::TransportError { at_ms, error } => {
                    (*at_ms, "lost", format!("transport error: {error}"))
                }
                Outcome::NoAnswer => (record.end_ms, "lost", "no answer".to_string()),
            };
            c.bar(
                y,
                r.sent_ms,
                to,
                class,
                &format!("{} {} {} at {} ms -> {what}", r.id, r.method, r.path, r.sent_ms),
            );
        }
    }
    for end in &record.connection_ends {
        let y = c.row(&format!("{} {}", end.kind, end.actor));
        let to = end.closed_ms.unwrap_or(record.end_ms);
        let tip = format!(
            "{} connection of {}, closed by the server at {:?} ms",
            end.kind, end.actor, end.closed_ms
        );
        c.bar(y, to.saturating_sub(1), to, if end.closed_ms.is_some() { "ok" } else { "err" }, &tip);
    }
}

/// Where a label `gap` beside the line at `x` goes: to its right, or to its
/// left (anchored at its end) when less than `room` is left before the right
/// edge, so that it stays inside the picture.
fn beside(x: f64, room: f64, gap: f64) -> (f64, &'static str) {
    if x > WIDTH - room {
        (x - gap, "end")
    } else {
        (x + gap, "start")
    }
}

fn stop_markers(c: &mut Canvas, node: &str, inc: &Incarnation, height: f64) {
    let mut last_x = f64::MIN;
    for (at, p) in &inc.probes {
        let Probe::Stop { step } = p else { continue };
        let x = c.x(*at);
        let _ = write!(
            c.body,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" class="step"><title>{node}: Stop step {step:?} at {at} ms</title></line>"#,
            height - 30.0
        );
        // Steps at the same instant share a line; label only where there is room.
        if x - last_x > 40.0 {
            let (label_x, anchor) = beside(x, 80.0, 2.0);
            let _ = write!(
                c.body,
                r#"<text x="{label_x:.1}" y="{:.1}" text-anchor="{anchor}" class="steplabel">stop {at} ms</text>"#,
                TOP - 4.0
            );
            last_x = x;
        }
    }
}

fn axis(c: &mut Canvas, height: f64) {
    let y = height - 30.0;
    let _ = write!(
        c.body,
        r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" class="axis"/>"#,
        WIDTH - 20.0
    );
    for i in 0..=10 {
        let ms = c.end_ms * i / 10;
        let x = c.x(ms);
        // The last time ends at the end of the axis instead of running off it.
        let anchor = if i == 10 { "end" } else { "start" };
        let _ = write!(
            c.body,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="{anchor}" class="label">{ms} ms</text>"#,
            y + 12.0
        );
    }
}
