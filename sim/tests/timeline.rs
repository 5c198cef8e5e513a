//! The picture of a run: it opens on Stop, marks Stop's steps, requests and
//! peers' messages, draws each violation as a labelled line linked to its
//! evidence, and no two of its labels overlap. Label boxes are computed from
//! the SVG as drawn, with a fixed width per character of its monospace font.

use std::path::{Path, PathBuf};

use quiesce_sim::{replay, timeline, Replay, Scenario};
use roxmltree::{Document, Node};

/// A character's advance as a fraction of the font size: DejaVu Sans Mono's
/// is 0.602 and Liberation Mono's 0.600; 0.62 leaves room for either.
const CHAR_EM: f64 = 0.62;
/// How far a glyph reaches above and below its baseline, as fractions of the size.
const ASCENT: f64 = 0.8;
const DESCENT: f64 = 0.25;

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(format!("{name}.json"))
}

fn run(name: &str) -> (Scenario, Replay) {
    let s = Scenario::load(&scenario_path(name)).unwrap_or_else(|e| panic!("{e}"));
    let run = replay(&s);
    (s, run)
}

fn zoo_names() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("zoo-") && n.ends_with(".json"))
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "the zoo must be there: {names:?}");
    names
}

fn render(name: &str, html: bool) -> (Replay, String) {
    let (s, run) = run(name);
    let doc = timeline::render(&s, &run.record, &run.violations, html);
    (run, doc)
}

/// A drawn label and its box.
#[derive(Debug)]
struct Label {
    text: String,
    class: String,
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Label {
    fn overlaps(&self, o: &Label) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
}

/// The picture: all of an SVG document, or the SVG inside a page.
fn svg_of(doc: &str) -> &str {
    let (Some(a), Some(b)) = (doc.find("<svg"), doc.rfind("</svg>")) else {
        panic!("no picture in the document")
    };
    &doc[a..b + "</svg>".len()]
}

/// The picture's width, height and every label it draws.
fn labels(doc: &str) -> (f64, f64, Vec<Label>) {
    let xml =
        Document::parse(svg_of(doc)).unwrap_or_else(|e| panic!("the picture must be well-formed XML: {e}"));
    let root = xml.root_element();
    let font = root.attribute("font-family").unwrap_or_default();
    assert!(font.starts_with("DejaVu Sans Mono") && font.ends_with("monospace"), "font: {font}");
    let number = |n: Node, name: &str| -> f64 {
        let v = n.attribute(name).unwrap_or_else(|| panic!("<{}> without {name}", n.tag_name().name()));
        v.parse().unwrap_or_else(|e| panic!("{name}={v}: {e}"))
    };
    let found = root.descendants().filter(|n| n.has_tag_name("text")).map(|n| label(n, number)).collect();
    (number(root, "width"), number(root, "height"), found)
}

fn inherited<'a>(n: Node<'a, '_>, name: &str) -> Option<&'a str> {
    n.ancestors().find_map(|a| a.attribute(name))
}

fn label(n: Node, number: impl Fn(Node, &str) -> f64) -> Label {
    assert!(n.ancestors().all(|a| a.attribute("transform").is_none()), "a label must not be transformed");
    let shown = |d: &Node| d.is_text() && !d.ancestors().any(|a| a.has_tag_name("title"));
    let text: String = n.descendants().filter(shown).filter_map(|d| d.text()).collect();
    let size: f64 = inherited(n, "font-size").and_then(|s| s.parse().ok()).expect("a font size");
    let (x, y) = (number(n, "x"), number(n, "y"));
    let width = text.chars().count() as f64 * CHAR_EM * size;
    let x0 = match inherited(n, "text-anchor").unwrap_or("start") {
        "middle" => x - width / 2.0,
        "end" => x - width,
        _ => x,
    };
    let class = n.attribute("class").unwrap_or_default().to_string();
    Label { text, class, x0, y0: y - ASCENT * size, x1: x0 + width, y1: y + DESCENT * size }
}

/// Every label inside the picture and clear of every other.
fn assert_readable(what: &str, doc: &str) {
    let (width, height, found) = labels(doc);
    assert!(found.len() > 10, "{what}: too few labels to be a picture");
    for l in &found {
        let inside = l.x0 >= 0.0 && l.x1 <= width && l.y0 >= 0.0 && l.y1 <= height;
        assert!(inside, "{what}: label {l:?} is not inside the {width}x{height} picture");
    }
    for (i, a) in found.iter().enumerate() {
        for b in &found[i + 1..] {
            assert!(!a.overlaps(b), "{what}: labels overlap:\n  {a:?}\n  {b:?}");
        }
    }
}

#[test]
fn no_two_labels_of_any_zoo_timeline_overlap() {
    for name in zoo_names() {
        let (s, run) = run(&name);
        for html in [false, true] {
            let doc = timeline::render(&s, &run.record, &run.violations, html);
            assert_readable(&format!("{name} (html: {html})"), &doc);
            let (_, _, found) = labels(&doc);
            let has = |text: &str| found.iter().any(|l| l.text.starts_with(text));
            assert!(has("Whole run, ms"), "{name}: the overview of the whole run must be drawn");
            assert!(has("Around Stop") || has("The whole run"), "{name}: the view must say what it shows");
        }
    }
}

#[test]
fn the_view_opens_on_stop_with_times_relative_to_it() {
    // Scenario: a 561 ms run whose Stop begins at 500 ms and whose tasks end at 530 ms.
    // Bug: the picture spread the whole run over its width; what matters was squeezed into its right edge.
    // Fix: the view opens on Stop, with the whole run as a strip above it.
    let (run, doc) = render("zoo-no-registration-gate", false);
    let inc = &run.record.nodes["api"][0];
    let (called, ended) = (inc.stop_called_ms.unwrap_or(0), inc.tasks_ended_ms.unwrap_or(0));
    let w = timeline::focus(&run.record, &run.violations);
    assert_eq!(w.stop_ms, Some(called));
    assert!(w.from < called && w.to > ended && w.to <= run.record.end_ms, "{w:?} around {called}..{ended}");
    assert!((w.to - w.from) * 3 < run.record.end_ms, "the view must be a small part of the run: {w:?}");
    let (_, _, found) = labels(&doc);
    let line_of = |name: &str| -> Vec<&Label> {
        let head = found.iter().find(|l| l.text == name).unwrap_or_else(|| panic!("no line {name}"));
        found.iter().filter(|l| l.y0 == head.y0 && l.text != name).collect()
    };
    let (relative, absolute) = (line_of("since Stop, ms"), line_of("run time, ms"));
    let at = |line: &[&Label], text: &str| line.iter().find(|l| l.text == text).map(|l| (l.x0 + l.x1) / 2.0);
    let zero = at(&relative, "0").expect("a tick at Stop");
    let stop = at(&absolute, &called.to_string()).expect("Stop's time");
    assert!((zero - stop).abs() < 1.0, "0 since Stop and {called} ms must be one tick");
    assert!(
        relative.iter().any(|l| l.text.starts_with('-')) && relative.iter().any(|l| l.text.starts_with('+'))
    );
    assert_eq!(relative.len(), absolute.len(), "each tick has both times");
}

#[test]
fn a_long_stop_shows_the_whole_run() {
    let (run, _) = render("zoo-gate-checked-once", false);
    let w = timeline::focus(&run.record, &run.violations);
    assert_eq!((w.from, w.to), (0, run.record.end_ms), "Stop takes most of this run");
}

#[test]
fn stop_steps_at_one_instant_stack_in_their_order() {
    let (run, doc) = render("zoo-no-registration-gate", false);
    let (_, _, found) = labels(&doc);
    let steps: Vec<&Label> = found.iter().filter(|l| l.class == "steplabel").collect();
    let names = ["Begin", "1 TimersStopped", "2a AcceptorsClosed", "5b WorkJoined", "7 Stopped"];
    for name in names {
        assert!(steps.iter().any(|l| l.text == format!("{name} @500")), "{name} must be labelled: {steps:?}");
    }
    assert_eq!(steps.len(), 10, "every step of {} is at 500 ms", run.record.scenario);
    assert!(steps.windows(2).all(|w| w[0].x0 == w[1].x0 && w[1].y0 > w[0].y0), "stacked in order: {steps:?}");
}

#[test]
fn requests_are_marked_on_client_and_connection_rows_by_outcome() {
    let (_, doc) = render("zoo-modify-answers200-when-skipped", false);
    let marks = |class: &str, text: &str| doc.matches(&format!(r#"class="{class}"><title>{text}"#)).count();
    assert!(
        marks("skipped", "bulk#1 POST /v1/objects/hosts") > 0,
        "the client's request, as skipped objects"
    );
    assert!(
        marks("skipped", "c1 r1 POST /v1/objects/hosts answered 200") > 0,
        "its answer on the connection"
    );
    assert!(doc.contains(r#"<title>bulk#1 POST /v1/objects/hosts (on api incarnation 1 c1 r1): sent at"#));
    assert!(doc.contains("h3:503"), "the tooltip must give the per-object outcomes");
    assert!(doc.contains(r#"class="cell-not"><title>h3: 503</title>"#), "the skipped object must be drawn");
    let (_, doc) = render("zoo-no-registration-gate", false);
    assert!(doc.contains(r#"class="transport"><title>fresh2#1 POST"#), "a transport error must be marked");
    assert!(doc.contains(r#"class="ok"><title>fresh0#1 POST"#), "a 2xx must be marked");
}

#[test]
fn cluster_messages_show_sent_applied_dropped_and_acknowledged_on_the_peer_row() {
    let (_, doc) = render("zoo-dropped-messages-acknowledged", false);
    let lost = r#"class="lost"><title>check result ts=1767225600.302 for h1 to api: sent at 302 ms, applied 0 times, acknowledged"#;
    assert!(doc.contains(lost), "the message the violation names must show it was lost");
    for class in ["sent", "applied", "ack", "session", "dropped"] {
        assert!(doc.contains(&format!(r#"class="{class}"><title>"#)), "no {class} mark");
    }
}

#[test]
fn each_violation_line_is_linked_to_its_evidence() {
    let (run, doc) = render("zoo-no-registration-gate", true);
    assert_eq!(run.violations.len(), 4);
    let xml = Document::parse(svg_of(&doc)).unwrap_or_else(|e| panic!("{e}"));
    for n in 1..=4 {
        let v = &run.violations[n - 1];
        let group =
            xml.descendants().find(|e| e.attribute("id") == Some(&format!("vl{n}"))).expect("a label group");
        assert_eq!(group.attribute("data-v"), Some(n.to_string().as_str()));
        let label = format!("[{n}] listener-closed @{} ms", v.at_ms);
        assert!(group.descendants().any(|e| e.text() == Some(label.as_str())), "no label {label}");
        let line = |e: &Node| e.attribute("data-v") == group.attribute("data-v") && e.has_children();
        let lines =
            xml.descendants().filter(line).flat_map(|g| g.children()).filter(|c| c.has_tag_name("line"));
        assert!(lines.filter(|l| l.attribute("class") == Some("violation")).count() >= 2, "lines of [{n}]");
        let entry =
            format!(r#"<li id="ev{n}" data-v="{n}"><p><b>[{n}] listener-closed</b> at {} ms"#, v.at_ms);
        assert!(doc.contains(&entry), "no evidence entry [{n}]");
        assert!(doc.contains(&format!("<code>{}</code>", v.evidence[0])), "the evidence itself");
    }
    assert!(doc.contains("<script>") && doc.contains("classList.toggle('hl'"), "clicking must highlight");
}

#[test]
fn the_page_loads_nothing_from_elsewhere_and_the_svg_has_no_script() {
    let (_, page) = render("zoo-json-rpc-without-gate", true);
    for needle in ["src=", "href=", "@import", "url(http", "https://", "<link"] {
        assert!(!page.contains(needle), "the page must be self-contained: found {needle}");
    }
    assert_eq!(page.matches("http://").count(), 1, "only the SVG namespace");
    let (run, svg) = render("zoo-json-rpc-without-gate", false);
    assert!(!svg.contains("<script") && svg.starts_with("<svg"), "the SVG stays for embedding");
    let (_, _, found) = labels(&svg);
    let evidence = found.iter().filter(|l| l.class == "evline").count();
    assert!(evidence > run.violations.len(), "the SVG alone must carry the evidence");
}

#[test]
fn a_zoo_failure_timeline_shows_the_violation_and_stop_steps() {
    let (run, doc) = render("zoo-http-handler-without-gate", true);
    assert!(!run.violations.is_empty(), "the zoo scenario must fail for its picture to show a violation");
    assert!(doc.contains(r#"class="violation""#), "the violation must be drawn as a line");
    let name = run.violations[0].invariant.name();
    assert!(doc.contains(&format!(r#"class="vlabel">[1] {name} @"#)), "the line must be labelled {name}");
    assert!(doc.contains(r#"class="steplabel">Begin @500</text>"#), "Stop's steps must be marked");
}

#[test]
fn labels_stay_inside_the_picture() {
    // Scenario: a violation at the very end of a run.
    // Bug: its label and the last time on the axis ran off the right edge.
    // Fix: labels near the right edge are anchored at their end.
    let (s, mut run) = run("zoo-http-handler-without-gate");
    run.violations[0].at_ms = run.record.end_ms;
    for html in [false, true] {
        let doc = timeline::render(&s, &run.record, &run.violations, html);
        assert!(
            doc.contains(r#"text-anchor="end" class="vlabel""#),
            "a late violation's label must turn left"
        );
        assert_readable("a violation at the end", &doc);
    }
}

#[test]
fn a_stop_step_at_the_end_is_labelled_inside_the_picture() {
    // Scenario: Stop returns at the very end of the run (a Stop that a
    // planted bug keeps waiting).
    // Bug: the label of its last step ran off the right edge.
    // Fix: a step near the right edge is labelled to its left.
    let (s, mut run) = run("zoo-http-handler-without-gate");
    let end = run.record.end_ms;
    for inc in run.record.nodes.values_mut().flatten() {
        (inc.stop_returned_ms, inc.tasks_ended_ms) = (Some(end), Some(end));
        for (at, p) in inc.probes.iter_mut() {
            if matches!(p, quiesce::probe::Probe::Stop { .. }) {
                *at = end;
            }
        }
    }
    let doc = timeline::render(&s, &run.record, &run.violations, false);
    let label = format!(r#"text-anchor="end" class="steplabel">7 Stopped @{end}</text>"#);
    assert!(doc.contains(&label), "the last step's label must turn left");
    assert_readable("steps at the end", &doc);
}
