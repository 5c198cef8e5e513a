//! Text boxes and label placement. Every label's box comes from a fixed
//! width per character of a monospace font, so labels are placed without a
//! browser, and a test can check the boxes of what was drawn.

/// The font every label is drawn in: monospace, so each character has the same advance.
pub const FONT: &str = "DejaVu Sans Mono, Liberation Mono, monospace";
/// The size of most labels (px).
pub const SIZE: f64 = 12.0;
/// A character's advance as a fraction of the font size: DejaVu Sans Mono's
/// is 0.602 and Liberation Mono's 0.600; 0.62 leaves room for either.
pub const CHAR_EM: f64 = 0.62;
/// The space kept between two labels side by side.
const GAP: f64 = 8.0;

/// How wide `text` is drawn at `size` px.
pub fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * CHAR_EM * size
}

/// `text`, cut to fit `width` px at `size` px, ending in `...` when cut.
pub fn fit(text: &str, width: f64, size: f64) -> String {
    let room = (width / (CHAR_EM * size)).floor() as usize;
    if text.chars().count() <= room {
        return text.to_string();
    }
    let kept: String = text.chars().take(room.saturating_sub(3)).collect();
    format!("{kept}...")
}

/// Which end of a label its `x` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// `x` is where the label begins.
    Start,
    /// `x` is the label's middle.
    Middle,
    /// `x` is where the label ends.
    End,
}

impl Anchor {
    /// The SVG `text-anchor` value.
    pub fn svg(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }

    /// The horizontal extent of a label `width` wide anchored at `x`.
    pub fn span(self, x: f64, width: f64) -> (f64, f64) {
        match self {
            Anchor::Start => (x, x + width),
            Anchor::Middle => (x - width / 2.0, x + width / 2.0),
            Anchor::End => (x - width, x),
        }
    }
}

/// Where a label `width` wide goes beside the line at `x`, `gap` px away:
/// to its right, or to its left when it would pass `max`, so that it stays
/// within `min..max` (a label wider than that starts at `min`).
pub fn beside(x: f64, width: f64, gap: f64, min: f64, max: f64) -> (f64, Anchor) {
    if x + gap + width <= max {
        (x + gap, Anchor::Start)
    } else if x - gap - width >= min {
        (x - gap, Anchor::End)
    } else {
        (min, Anchor::Start)
    }
}

/// Which way from its label the line a label names runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Way {
    /// The labels name no lines.
    #[default]
    None,
    /// Up through the lanes above the label (labels under what they mark).
    Up,
    /// Down through the lanes below the label (labels over what they mark).
    Down,
}

/// Lanes of labels side by side: each label goes on the first lane where it
/// keeps its distance from every other, so no two ever overlap; where it
/// can, also where no line crosses it and its own line crosses no label.
#[derive(Debug, Default)]
pub struct Lanes {
    taken: Vec<Vec<(f64, f64)>>,
    /// Each line: its x and the lane of its label.
    lines: Vec<(f64, usize)>,
    way: Way,
}

impl Lanes {
    /// Lanes whose labels name lines running `way`.
    pub fn with_lines(way: Way) -> Lanes {
        Lanes { way, ..Lanes::default() }
    }

    /// Puts a label covering `from..to` on the first lane with room; returns the lane.
    pub fn place(&mut self, from: f64, to: f64) -> usize {
        self.place_block(None, &[(from, to)])
    }

    /// Puts labels covering `spans` on consecutive lanes, naming the line at
    /// `line` (if any); returns the first lane. The lane is the first where
    /// none of them touches another label, no line crosses them and their
    /// line crosses no label; failing that, the first without crossing
    /// lines; failing that, the first where they touch no other label.
    pub fn place_block(&mut self, line: Option<f64>, spans: &[(f64, f64)]) -> usize {
        let lanes = 0..=self.taken.len();
        let apart = |lane: usize| spans.iter().enumerate().all(|(k, &(a, b))| self.free(lane + k, a, b));
        let uncrossed =
            |lane: usize| spans.iter().enumerate().all(|(k, &(a, b))| self.uncrossed(lane + k, a, b));
        let clear = |lane: usize| line.is_none_or(|x| self.clear(x, self.line_lane(lane, spans.len())));
        let first = lanes
            .clone()
            .find(|&l| apart(l) && uncrossed(l) && clear(l))
            .or_else(|| lanes.clone().find(|&l| apart(l) && uncrossed(l)))
            .or_else(|| lanes.clone().find(|&l| apart(l)))
            .unwrap_or(self.taken.len());
        for (k, span) in spans.iter().enumerate() {
            while self.taken.len() <= first + k {
                self.taken.push(Vec::new());
            }
            self.taken[first + k].push(*span);
        }
        if let Some(x) = line {
            self.lines.push((x, self.line_lane(first, spans.len())));
        }
        first
    }

    /// The lane a block's line starts from: the lane nearest what it marks.
    fn line_lane(&self, first: usize, count: usize) -> usize {
        match self.way {
            Way::Up => first + count.saturating_sub(1),
            Way::None | Way::Down => first,
        }
    }

    /// Whether a line whose label is on lane `from` runs through `lane`.
    fn passes(&self, from: usize, lane: usize) -> bool {
        match self.way {
            Way::None => false,
            Way::Up => lane < from,
            Way::Down => lane > from,
        }
    }

    fn free(&self, lane: usize, from: f64, to: f64) -> bool {
        self.taken.get(lane).is_none_or(|l| l.iter().all(|&(a, b)| to + GAP <= a || b + GAP <= from))
    }

    fn uncrossed(&self, lane: usize, from: f64, to: f64) -> bool {
        self.lines.iter().all(|&(x, k)| !self.passes(k, lane) || x < from - 1.0 || x > to + 1.0)
    }

    fn clear(&self, x: f64, lane: usize) -> bool {
        let crossed = |(j, l): (usize, &Vec<(f64, f64)>)| {
            self.passes(lane, j) && l.iter().any(|&(a, b)| x >= a - 1.0 && x <= b + 1.0)
        };
        !self.taken.iter().enumerate().any(crossed)
    }

    /// Whether `from..to` fits on the first lane; takes it there if so.
    pub fn take_first(&mut self, from: f64, to: f64) -> bool {
        let fits = self.free(0, from, to);
        if fits {
            self.place(from, to);
        }
        fits
    }

    /// How many lanes are in use.
    pub fn count(&self) -> usize {
        self.taken.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_that_would_touch_another_goes_to_the_next_lane() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.place(0.0, 100.0), 0);
        assert_eq!(lanes.place(50.0, 150.0), 1, "an overlapping label must move down");
        assert_eq!(lanes.place(104.0, 110.0), 2, "closer than the gap counts as touching");
        assert_eq!(lanes.place(200.0, 300.0), 0, "a label with room goes back to the first lane");
        assert_eq!(lanes.count(), 3);
    }

    #[test]
    fn a_block_of_labels_stays_together_below_what_it_would_touch() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.place_block(None, &[(0.0, 100.0), (0.0, 80.0), (0.0, 120.0)]), 0);
        assert_eq!(lanes.place(300.0, 400.0), 0);
        // Lane 0 has room for the first, but lane 1 none for the second; lane
        // 1 has room for the first, but lane 2 none for the second.
        assert_eq!(lanes.place_block(None, &[(150.0, 250.0), (85.0, 250.0)]), 2);
        assert_eq!(lanes.count(), 4);
    }

    #[test]
    fn no_line_crosses_a_label_where_there_is_another_lane() {
        let mut up = Lanes::with_lines(Way::Up);
        assert_eq!(up.place_block(Some(300.0), &[(303.0, 450.0)]), 0);
        assert_eq!(up.place_block(Some(250.0), &[(253.0, 400.0)]), 1);
        // Clear of labels on lane 0, but the line at 250 runs up through it there.
        assert_eq!(up.place_block(Some(600.0), &[(240.0, 260.0)]), 2);
        let mut down = Lanes::with_lines(Way::Down);
        assert_eq!(down.place_block(None, &[(0.0, 50.0), (0.0, 50.0)]), 0);
        // Its label fits on lane 0, but its line would run down through the label on lane 1.
        assert_eq!(down.place_block(Some(25.0), &[(200.0, 300.0)]), 1);
        // No lane below the line at 25 is free of it: the label still gets a lane.
        assert_eq!(down.place_block(None, &[(10.0, 40.0)]), 2);
    }

    #[test]
    fn a_label_near_the_right_edge_turns_left() {
        assert_eq!(beside(100.0, 50.0, 3.0, 0.0, 1000.0), (103.0, Anchor::Start));
        assert_eq!(beside(990.0, 50.0, 3.0, 0.0, 1000.0), (987.0, Anchor::End));
        assert_eq!(beside(10.0, 50.0, 3.0, 0.0, 40.0), (0.0, Anchor::Start), "too wide for either side");
    }

    #[test]
    fn a_cut_label_fits_its_width() {
        let cut = fit("a-rather-long-connection-name", 100.0, SIZE);
        assert!(text_width(&cut, SIZE) <= 100.0 && cut.ends_with("..."), "{cut}");
        assert_eq!(fit("short", 100.0, SIZE), "short");
    }
}
