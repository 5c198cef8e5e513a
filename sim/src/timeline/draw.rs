//! Drawing: the title, the overview of the whole run, the view on Stop with
//! its steps, rows and violations, the legend and (for the SVG alone) the
//! evidence. Each label is placed on a line of its own or through [`Lanes`],
//! so no two overlap.

use std::fmt::Write as _;

use super::layout::{beside, fit, text_width, Anchor, Lanes, Way, CHAR_EM, FONT, SIZE};
use super::model::{step_name, Item, Row, RowKind, Shape, StepMark};
use super::svg::{esc, Svg};
use super::Window;
use crate::oracles::Violation;

/// The picture's width (px): it fits a 1280 px browser window beside a scroll bar.
pub const WIDTH: f64 = 1230.0;
const MARGIN: f64 = 6.0;
/// Where the time axis begins; row names go left of it.
const LEFT: f64 = 200.0;
const RIGHT: f64 = WIDTH - 14.0;
const ROW: f64 = 20.0;
const STRIP: f64 = 14.0;
/// The distance between two lines of labels.
const LANE: f64 = 15.0;
/// A label's baseline below the top of its lane.
const BASE: f64 = 11.0;
/// More ticks than the axis has room for labels.
const MAX_TICKS: usize = 200;
/// Where labels of the axis may begin: past the names of its two lines.
const AXIS_NAMES: f64 = 120.0;

/// Simulated ms to x, for the span of time a view shows.
#[derive(Clone, Copy, Debug)]
struct Scale {
    from: u64,
    to: u64,
}

impl Scale {
    fn x(self, ms: u64) -> f64 {
        let span = self.to.saturating_sub(self.from).max(1) as f64;
        LEFT + (RIGHT - LEFT) * (ms.max(self.from).min(self.to).saturating_sub(self.from)) as f64 / span
    }

    fn shows(self, item: &Item) -> bool {
        item.to >= self.from && item.from <= self.to
    }

    fn holds(self, ms: u64) -> bool {
        (self.from..=self.to).contains(&ms)
    }
}

/// A label placed beside a line at `line`.
struct Placed {
    line: f64,
    x: f64,
    anchor: Anchor,
    lane: usize,
    text: String,
}

/// Places a label beside the line at `line` (none if `named` is false), within `min..`.
fn place(lanes: &mut Lanes, (line, named): (f64, bool), text: String, min: f64) -> Placed {
    let width = text_width(&text, SIZE);
    let (x, anchor) = beside(line, width, 3.0, min, WIDTH - MARGIN);
    let lane = lanes.place_block(named.then_some(line), &[anchor.span(x, width)]);
    Placed { line, x, anchor, lane, text }
}

/// The picture being drawn, top to bottom.
#[derive(Default)]
pub struct Picture {
    svg: Svg,
    y: f64,
}

/// What one picture shows.
pub struct Scene<'a> {
    /// The scenario's name and seed, as the title says them.
    pub title: String,
    /// Every row of the run.
    pub rows: &'a [Row],
    /// Every Stop step.
    pub steps: &'a [StepMark],
    /// The violations, numbered from 1 in this order.
    pub violations: &'a [&'a Violation],
    /// The span the view opens on.
    pub window: Window,
    /// When the run ended (ms).
    pub end_ms: u64,
}

impl Picture {
    /// Draws `scene`; with `evidence`, the violations' evidence is drawn under the legend.
    pub fn draw(scene: &Scene, evidence: bool) -> String {
        let mut p = Picture::default();
        p.title(scene);
        p.overview(scene);
        p.view(scene);
        p.legend();
        if evidence {
            p.evidence(scene.violations);
        }
        p.finish()
    }

    fn finish(self) -> String {
        let height = (self.y + 12.0).ceil();
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="{SIZE}"><style>{STYLE}</style><defs><clipPath id="plot"><rect x="{LEFT}" y="0" width="{:.1}" height="{height}"/></clipPath></defs><rect x="0" y="0" width="{WIDTH}" height="{height}" class="paper"/>{}</svg>"#,
            RIGHT - LEFT,
            self.svg.out
        )
    }

    fn title(&mut self, scene: &Scene) {
        self.y += 20.0;
        let head = format!("{}: {} ms simulated", scene.title, scene.end_ms);
        self.svg.text(MARGIN, self.y, Anchor::Start, "title", 14.0, &fit(&head, WIDTH - 2.0 * MARGIN, 14.0));
        self.y += 18.0;
        let (class, verdict) = verdict(scene.violations);
        self.svg.text(MARGIN, self.y, Anchor::Start, class, SIZE, &fit(&verdict, WIDTH - 2.0 * MARGIN, SIZE));
    }

    fn overview(&mut self, scene: &Scene) {
        let scale = Scale { from: 0, to: scene.end_ms.max(1) };
        self.y += 26.0;
        self.svg.text(MARGIN, self.y, Anchor::Start, "head", SIZE, "Whole run, ms");
        self.tick_labels(scale, &ticks(scale, 0), self.y, |t| t.to_string());
        self.y += 5.0;
        let top = self.y;
        for row in scene.rows.iter().filter(|r| r.kind == RowKind::Node) {
            self.strip(&row.label, row.items.iter(), scale);
        }
        for (kind, name) in [(RowKind::Client, "requests"), (RowKind::Peer, "cluster messages")] {
            let rows: Vec<&Row> = scene.rows.iter().filter(|r| r.kind == kind).collect();
            if !rows.is_empty() {
                self.strip(name, rows.iter().flat_map(|r| &r.items), scale);
            }
        }
        let (x0, x1) = (scale.x(scene.window.from), scale.x(scene.window.to));
        let tip = format!("the view below: {} to {} ms", scene.window.from, scene.window.to);
        self.svg.rect((x0, top - 2.0, (x1 - x0).max(2.0), self.y - top + 4.0), "window", &tip);
        self.violation_marks(scene.violations, scale, top - 2.0, false);
    }

    /// One overview line: a name and the marks of some rows, squeezed.
    fn strip<'a>(&mut self, name: &str, items: impl Iterator<Item = &'a Item>, scale: Scale) {
        self.svg.text(
            MARGIN,
            self.y + BASE,
            Anchor::Start,
            "label",
            SIZE,
            &fit(name, LEFT - 2.0 * MARGIN, SIZE),
        );
        self.svg.open(r#"clip-path="url(#plot)""#);
        for item in items.filter(|i| !matches!(i.shape, Shape::Cells(_))) {
            self.item(item, scale, self.y, STRIP);
        }
        self.svg.close_group();
        self.y += LANE;
    }

    fn view(&mut self, scene: &Scene) {
        let scale = Scale { from: scene.window.from, to: scene.window.to };
        let shown: Vec<&Row> = scene
            .rows
            .iter()
            .filter(|r| r.kind == RowKind::Node || r.items.iter().any(|i| scale.shows(i)))
            .collect();
        self.y += 30.0;
        let head = view_head(scene, scene.rows.len() - shown.len());
        self.svg.text(MARGIN, self.y, Anchor::Start, "head", SIZE, &fit(&head, WIDTH - 2.0 * MARGIN, SIZE));
        let grid = self.axis(scene.window, scale);
        let (steps, step_lanes) = place_steps(scene.steps, scale);
        let steps_top = self.y + 4.0;
        let rows_top = steps_top + step_lanes as f64 * LANE + 4.0;
        let rows_bottom = rows_top + shown.len() as f64 * ROW;
        for x in grid {
            self.svg.line((x, rows_top), (x, rows_bottom), "grid", "");
        }
        self.step_lines(&steps, steps_top, rows_bottom);
        self.row_names(&shown, rows_top);
        // Under the marks, so that what happened at a violation stays in sight.
        self.violation_lines(scene.violations, scale, (rows_top, rows_bottom + 4.0));
        self.row_marks(&shown, scale, rows_top);
        self.step_labels(&steps, steps_top);
        self.y = rows_bottom;
        self.violation_marks(scene.violations, scale, rows_bottom, true);
    }

    /// The view's time labels: since Stop (if there was one) and since the run began.
    /// Returns where its ticks are.
    fn axis(&mut self, window: Window, scale: Scale) -> Vec<f64> {
        let origin = window.stop_ms.unwrap_or(0);
        let at = ticks(scale, origin);
        if let Some(stop) = window.stop_ms {
            self.y += LANE + 4.0;
            self.svg.text(MARGIN, self.y, Anchor::Start, "muted", SIZE, "since Stop, ms");
            let relative = |t: u64| match t as i64 - stop as i64 {
                0 => "0".to_string(),
                d => format!("{d:+}"),
            };
            self.tick_labels(scale, &at, self.y, relative);
        }
        self.y += LANE;
        self.svg.text(MARGIN, self.y, Anchor::Start, "muted", SIZE, "run time, ms");
        self.tick_labels(scale, &at, self.y, |t| t.to_string());
        at.iter().map(|t| scale.x(*t)).collect()
    }

    /// Labels of ticks on one line; one that would touch its neighbour is left out.
    fn tick_labels(&mut self, scale: Scale, ticks: &[u64], y: f64, label: impl Fn(u64) -> String) {
        let mut lanes = Lanes::default();
        for t in ticks {
            let (text, x) = (label(*t), scale.x(*t));
            let width = text_width(&text, SIZE);
            let anchor = match Anchor::Middle.span(x, width) {
                (_, b) if b > WIDTH - MARGIN => Anchor::End,
                (a, _) if a < AXIS_NAMES => Anchor::Start,
                _ => Anchor::Middle,
            };
            let (a, b) = anchor.span(x, width);
            if lanes.take_first(a, b) {
                self.svg.text(x, y, anchor, "muted", SIZE, &text);
            }
        }
    }

    /// Each step's line, from its label's lane down through the rows.
    fn step_lines(&mut self, steps: &[Placed], top: f64, bottom: f64) {
        let mut drawn: Vec<f64> = Vec::new();
        for s in steps {
            if drawn.contains(&s.line) {
                continue;
            }
            let lane = steps.iter().filter(|t| t.line == s.line).map(|t| t.lane).min().unwrap_or(s.lane);
            self.svg.line((s.line, top + lane as f64 * LANE), (s.line, bottom), "step", "");
            drawn.push(s.line);
        }
    }

    fn step_labels(&mut self, steps: &[Placed], top: f64) {
        for s in steps {
            let y = top + s.lane as f64 * LANE + BASE;
            self.svg.text(s.x, y, s.anchor, "steplabel", SIZE, &s.text);
        }
    }

    fn row_names(&mut self, rows: &[&Row], top: f64) {
        for (i, row) in rows.iter().enumerate() {
            let y = top + i as f64 * ROW;
            if i % 2 == 1 {
                self.svg.rect((MARGIN, y, RIGHT - MARGIN, ROW), "stripe", "");
            }
            let name = fit(&row.label, LEFT - 2.0 * MARGIN, SIZE);
            self.svg.text(MARGIN, y + 14.0, Anchor::Start, "label", SIZE, &name);
        }
    }

    fn row_marks(&mut self, rows: &[&Row], scale: Scale, top: f64) {
        self.svg.open(r#"clip-path="url(#plot)""#);
        for (i, row) in rows.iter().enumerate() {
            for item in row.items.iter().filter(|i| scale.shows(i)) {
                self.item(item, scale, top + i as f64 * ROW, ROW);
            }
        }
        self.svg.close_group();
    }

    /// One mark in a row `h` px high whose top is at `y`.
    fn item(&mut self, it: &Item, scale: Scale, y: f64, h: f64) {
        let (x0, x1) = (scale.x(it.from), scale.x(it.to));
        let w = (x1 - x0).max(2.0);
        let (class, tip) = (it.class, it.tip.as_str());
        match &it.shape {
            Shape::Bar => self.svg.rect((x0, y + 3.0, w, h - 6.0), class, tip),
            Shape::Band => self.svg.rect((x0, y + h / 2.0 - h * 0.15, w, h * 0.3), class, tip),
            Shape::Point if scale.holds(it.from) => {
                self.svg.rect((x0 - 1.5, y + 2.0, 3.0, h - 4.0), class, tip)
            }
            Shape::Low if scale.holds(it.from) => {
                self.svg.rect((x0 - 1.5, y + h / 2.0, 3.0, h / 2.0 - 2.0), class, tip)
            }
            Shape::Cells(results) if scale.holds(it.from) => self.cells(x0, y, results),
            _ => {}
        }
    }

    /// Per-object outcomes: small squares in two lines on white, after the
    /// answer at `x`, or before it where the view ends.
    fn cells(&mut self, x: f64, y: f64, results: &[(String, u16)]) {
        let width = results.len().div_ceil(2) as f64 * 6.0 + 3.0;
        let left = if x + 2.0 + width <= RIGHT { x + 2.0 } else { x - 2.0 - width };
        self.svg.rect((left, y + 2.0, width, ROW - 4.0), "paper", "");
        for (k, (name, code)) in results.iter().enumerate() {
            let (col, line) = ((k / 2) as f64, (k % 2) as f64);
            let class = if (200..300).contains(code) { "cell-ok" } else { "cell-not" };
            let tip = format!("{name}: {code}");
            self.svg.rect((left + 2.0 + col * 6.0, y + 4.5 + line * 6.0, 5.0, 5.0), class, &tip);
        }
    }

    /// Each violation inside `scale` as a red line over `rows` (top, bottom).
    fn violation_lines(&mut self, violations: &[&Violation], scale: Scale, rows: (f64, f64)) {
        for (i, v) in violations.iter().enumerate().filter(|(_, v)| scale.holds(v.at_ms)) {
            let x = scale.x(v.at_ms);
            self.svg.open(&format!(r#"class="vio" data-v="{}""#, i + 1));
            self.svg.line((x, rows.0), (x, rows.1), "hit", "");
            self.svg.line((x, rows.0), (x, rows.1), "violation", "");
            self.svg.close_group();
        }
    }

    /// Violations as red lines from `top` down to their labels, which go in
    /// lanes under `self.y`; one outside `scale` is a label at the edge it is past.
    fn violation_marks(&mut self, violations: &[&Violation], scale: Scale, top: f64, full: bool) {
        let band = self.y + 6.0;
        let (placed, lanes) = place_violations(violations, scale, full);
        for (n, v, placed) in placed {
            let id = if full { format!(r#" id="vl{n}""#) } else { String::new() };
            self.svg.open(&format!(r#"class="vio" data-v="{n}"{id}"#));
            let _ = write!(self.svg.out, "<title>{}</title>", esc(v.to_string().trim_end()));
            let base = band + placed.lane as f64 * LANE + BASE;
            if scale.holds(v.at_ms) {
                let (a, b) = ((placed.line, top), (placed.line, base - BASE + 1.0));
                self.svg.line(a, b, "hit", "");
                self.svg.line(a, b, "violation", "");
            }
            self.svg.text(placed.x, base, placed.anchor, "vlabel", SIZE, &placed.text);
            self.svg.close_group();
        }
        self.y = band + lanes as f64 * LANE;
    }

    fn legend(&mut self) {
        self.y += 24.0;
        for (section, entries) in LEGEND {
            self.svg.text(MARGIN, self.y, Anchor::Start, "head", SIZE, section);
            let mut x = AXIS_NAMES + 10.0;
            for (class, swatch, text) in *entries {
                let need = 18.0 + text_width(text, SIZE) + 16.0;
                if x + need > WIDTH - MARGIN {
                    (x, self.y) = (AXIS_NAMES + 10.0, self.y + LANE + 2.0);
                }
                self.swatch(x, self.y, class, *swatch);
                self.svg.text(x + 18.0, self.y, Anchor::Start, "label", SIZE, text);
                x += need;
            }
            self.y += LANE + 3.0;
        }
    }

    fn swatch(&mut self, x: f64, baseline: f64, class: &str, swatch: Swatch) {
        let top = baseline - 10.0;
        match swatch {
            Swatch::Bar => self.svg.rect((x, top, 14.0, 11.0), class, ""),
            Swatch::Band => self.svg.rect((x, top + 3.5, 14.0, 4.0), class, ""),
            Swatch::Tick => self.svg.rect((x + 5.5, top - 1.0, 3.0, 13.0), class, ""),
            Swatch::Low => self.svg.rect((x + 5.5, top + 5.0, 3.0, 7.0), class, ""),
            Swatch::Cell => self.svg.rect((x + 4.5, top + 3.0, 5.0, 5.0), class, ""),
            Swatch::Line => self.svg.line((x + 7.0, top - 2.0), (x + 7.0, top + 13.0), class, ""),
        }
    }

    fn evidence(&mut self, violations: &[&Violation]) {
        if violations.is_empty() {
            return;
        }
        self.y += 12.0;
        self.svg.text(MARGIN, self.y, Anchor::Start, "head", SIZE, "Violations and their evidence");
        let columns = ((WIDTH - 2.0 * MARGIN) / (CHAR_EM * SIZE)).floor() as usize;
        let wrap = |text: &str, first: &str, rest: &str| -> Vec<String> {
            let options = textwrap::Options::new(columns).initial_indent(first).subsequent_indent(rest);
            textwrap::wrap(text, options).into_iter().map(String::from).collect()
        };
        for (i, v) in violations.iter().enumerate() {
            let n = i + 1;
            self.svg.open(&format!(r#"class="ev" data-v="{n}" id="ev{n}""#));
            let head = format!("[{n}] {} at {} ms on {}: {}", v.invariant.name(), v.at_ms, v.node, v.message);
            let evidence = v.evidence.iter().flat_map(|e| wrap(&format!("evidence: {e}"), "    ", "      "));
            let lines = wrap(&head, "", "    ").into_iter().map(|l| ("evhead", l));
            for (class, line) in lines.chain(evidence.map(|l| ("evline", l))) {
                self.y += LANE;
                self.svg.text(MARGIN, self.y, Anchor::Start, class, SIZE, &line);
            }
            self.svg.close_group();
        }
    }
}

/// PASS, or how many invariants broke and which.
fn verdict(violations: &[&Violation]) -> (&'static str, String) {
    if violations.is_empty() {
        return ("pass", "PASS: no invariant was broken".into());
    }
    let mut names: Vec<String> = Vec::new();
    for v in violations {
        let name = v.invariant.name();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let s = if violations.len() == 1 { "" } else { "s" };
    ("fail", format!("FAIL: {} violation{s} of {}", violations.len(), names.join(", ")))
}

fn view_head(scene: &Scene, hidden: usize) -> String {
    let w = scene.window;
    let what = match w.stop_ms {
        Some(stop) if w.from > 0 || w.to < scene.end_ms => {
            format!("Around Stop: {} to {} ms (Stop called at {stop} ms)", w.from, w.to)
        }
        Some(stop) => format!("The whole run (Stop called at {stop} ms)"),
        None => "The whole run (no Stop)".into(),
    };
    match hidden {
        0 => what,
        1 => format!("{what}; 1 row with nothing in this span is left out"),
        n => format!("{what}; {n} rows with nothing in this span are left out"),
    }
}

/// Each violation's label, numbered from 1: placed from right to left, so
/// that a label further left goes on a lane further from the rows and no
/// violation's line crosses another's label; labels of violations outside
/// `scale` (which have no line) come last.
fn place_violations<'a>(
    violations: &[&'a Violation],
    scale: Scale,
    full: bool,
) -> (Vec<(usize, &'a Violation, Placed)>, usize) {
    let mut order: Vec<(usize, &Violation)> =
        violations.iter().enumerate().map(|(i, v)| (i + 1, *v)).collect();
    order.sort_by_key(|(n, v)| (!scale.holds(v.at_ms), std::cmp::Reverse(v.at_ms), *n));
    let mut lanes = Lanes::with_lines(Way::Up);
    let mut placed: Vec<_> =
        order.into_iter().map(|(n, v)| (n, v, place_violation(&mut lanes, n, v, scale, full))).collect();
    placed.sort_by_key(|(n, _, _)| *n);
    (placed, lanes.count())
}

fn place_violation(lanes: &mut Lanes, n: usize, v: &Violation, scale: Scale, full: bool) -> Placed {
    let name = v.invariant.name();
    let text = if full { format!("[{n}] {name} @{} ms", v.at_ms) } else { format!("[{n}] {name}") };
    match v.at_ms {
        at if scale.holds(at) => place(lanes, (scale.x(at), true), text, MARGIN),
        at if at > scale.to => place(lanes, (WIDTH - MARGIN, false), format!("{text} (later) >"), MARGIN),
        _ => place(lanes, (LEFT, false), format!("< {text} (earlier)"), LEFT),
    }
}

/// Steps' labels, beside their lines, in lanes; the steps of one instant
/// stack in their order, on one side of their line.
fn place_steps(steps: &[StepMark], scale: Scale) -> (Vec<Placed>, usize) {
    let many_nodes = steps.iter().any(|s| s.node != steps[0].node);
    let label = |s: &StepMark| {
        let node = if many_nodes { format!("{}: ", s.node) } else { String::new() };
        format!("{node}{} @{}", step_name(s.step), s.at)
    };
    let shown: Vec<&StepMark> = steps.iter().filter(|s| scale.holds(s.at)).collect();
    let mut lanes = Lanes::with_lines(Way::Down);
    let mut placed = Vec::new();
    for group in shown.chunk_by(|a, b| a.at == b.at && a.node == b.node) {
        let texts: Vec<String> = group.iter().map(|s| label(s)).collect();
        let line = scale.x(group[0].at);
        let widest = texts.iter().map(|t| text_width(t, SIZE)).fold(0.0, f64::max);
        let (x, anchor) = beside(line, widest, 3.0, MARGIN, WIDTH - MARGIN);
        let spans: Vec<(f64, f64)> = texts.iter().map(|t| anchor.span(x, text_width(t, SIZE))).collect();
        let first = lanes.place_block(Some(line), &spans);
        let at = |(k, text)| Placed { line, x, anchor, lane: first + k, text };
        placed.extend(texts.into_iter().enumerate().map(at));
    }
    (placed, lanes.count())
}

/// Ticks at `origin` + k * step inside `scale`, with a round step that keeps
/// the widest label clear of the next.
fn ticks(scale: Scale, origin: u64) -> Vec<u64> {
    let span = scale.to.saturating_sub(scale.from).max(1);
    let widest = format!("+{span}").len().max(scale.to.to_string().len());
    let need = widest as f64 * CHAR_EM * SIZE + 24.0;
    let px_per_ms = (RIGHT - LEFT) / span as f64;
    let step = (0..15u32)
        .flat_map(|e| [1u64, 2, 5].map(|m| m * 10u64.pow(e)))
        .find(|s| *s as f64 * px_per_ms >= need)
        .unwrap_or(span) as i64;
    let clamp = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX / 4).min(i64::MAX / 4);
    let (from, to, o) = (clamp(scale.from), clamp(scale.to), clamp(origin));
    let first = (from - o).div_euclid(step) + i64::from((from - o).rem_euclid(step) != 0);
    // The step keeps ticks apart by a label's width, so there are never more than fit.
    (first..).map(|k| o + k * step).take_while(|t| *t <= to).take(MAX_TICKS).map(|t| t as u64).collect()
}

/// How a legend entry's sample is drawn.
#[derive(Clone, Copy)]
enum Swatch {
    Bar,
    Band,
    Tick,
    Low,
    Cell,
    Line,
}

type LegendSection = (&'static str, &'static [(&'static str, Swatch, &'static str)]);

const LEGEND: &[LegendSection] = &[
    (
        "node",
        &[
            ("run", Swatch::Bar, "running"),
            ("stopping", Swatch::Bar, "Stop running"),
            ("draining", Swatch::Bar, "tasks left after Stop returned"),
            ("down", Swatch::Bar, "down"),
            ("crash", Swatch::Tick, "crash"),
            ("error", Swatch::Tick, "accept error, panic, rejection"),
        ],
    ),
    (
        "connection",
        &[
            ("waiting", Swatch::Band, "accepted, not registered"),
            ("reg", Swatch::Tick, "registered"),
            ("conn-http", Swatch::Bar, "HTTP"),
            ("conn-endpoint", Swatch::Bar, "cluster endpoint"),
            ("conn-anonymous", Swatch::Bar, "anonymous cluster"),
            ("gate", Swatch::Band, "work inside the gate"),
            ("write", Swatch::Low, "object written"),
            ("sealed", Swatch::Low, "written after the seal"),
            ("open", Swatch::Band, "an actor's connection, open"),
            ("closed", Swatch::Tick, "closed by the node"),
            ("unclosed", Swatch::Tick, "never closed"),
        ],
    ),
    (
        "request",
        &[
            ("ok", Swatch::Bar, "2xx"),
            ("refused", Swatch::Bar, "503"),
            ("skipped", Swatch::Bar, "objects skipped"),
            ("error", Swatch::Bar, "other error status"),
            ("transport", Swatch::Bar, "transport error"),
            ("noanswer", Swatch::Bar, "no answer"),
            ("cell-ok", Swatch::Cell, "object done"),
            ("cell-not", Swatch::Cell, "object not done"),
        ],
    ),
    (
        "cluster message",
        &[
            ("sent", Swatch::Low, "sent"),
            ("applied", Swatch::Tick, "applied"),
            ("twice", Swatch::Tick, "applied again"),
            ("sealed", Swatch::Tick, "applied after the seal"),
            ("dropped", Swatch::Low, "dropped: never applied"),
            ("lost", Swatch::Low, "acknowledged, never applied"),
            ("ack", Swatch::Tick, "acknowledged"),
            ("session", Swatch::Tick, "session: Hello, backlog"),
            ("ignored", Swatch::Tick, "ignored"),
        ],
    ),
    (
        "lines",
        &[
            ("step", Swatch::Line, "a step of Stop"),
            ("violation", Swatch::Line, "violation [n], listed with its evidence below"),
            ("window", Swatch::Bar, "the span the view shows"),
        ],
    ),
];

const STYLE: &str = concat!(
    ".paper{fill:#fff}.title{font-weight:bold}.head{font-weight:bold;fill:#222}.label{fill:#222}.muted{fill:#555}",
    ".pass{fill:#070;font-weight:bold}.fail{fill:#b00;font-weight:bold}.stripe{fill:#f3f3f3}.grid{stroke:#ddd}",
    ".run{fill:#9d9}.stopping{fill:#f90}.draining{fill:#fd8}.down{fill:#ddd}.crash{fill:#000}",
    ".waiting{fill:#9ab}.conn-http{fill:#a8c8e8}.conn-endpoint{fill:#cdb0ea}.conn-anonymous{fill:#e8c0e0}",
    ".gate{fill:#235}.reg{fill:#247}.ok{fill:#2a2}.refused{fill:#f80}.skipped{fill:#a0c}.error{fill:#822}",
    ".transport{fill:#555}.noanswer{fill:#bbb}.write{fill:#4d4;stroke:#063;stroke-width:.5}.sealed{fill:#e22}.cell-ok{fill:#2a2}.cell-not{fill:#f80}",
    ".sent{fill:#48c}.applied{fill:#2a2}.twice{fill:#e22}.dropped{fill:#f80}.lost{fill:#e22}",
    ".ack{fill:#036}.session{fill:#333}.ignored{fill:#aaa}.closed{fill:#333}.unclosed{fill:#e22}",
    ".step{stroke:#777;stroke-dasharray:4,3}.steplabel{fill:#333}",
    ".window{fill:#48c;fill-opacity:.12;stroke:#48c}",
    ".violation{stroke:#d00;stroke-width:2}.hit{stroke:transparent;stroke-width:10}",
    ".vlabel{fill:#c00;font-weight:bold}.vio,.ev{cursor:pointer}.evline{fill:#222;white-space:pre}.evhead{fill:#900;font-weight:bold;white-space:pre}",
    ".vio.hl .violation{stroke:#800;stroke-width:4}.vio.hl .vlabel{fill:#800;text-decoration:underline}",
    ".ev.hl .evline,.ev.hl .evhead{fill:#800;font-weight:bold;text-decoration:underline}.open{fill:#777}",
    // What breaks an invariant keeps an outline, so it shows on a violation's line too.
    ".sealed,.lost,.twice{stroke:#000;stroke-width:1}",
);
