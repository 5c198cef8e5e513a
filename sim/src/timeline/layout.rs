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

/// Lanes of labels side by side: each label goes on the first lane where it
/// keeps its distance from every other, so no two ever overlap.
#[derive(Debug, Default)]
pub struct Lanes {
    taken: Vec<Vec<(f64, f64)>>,
}

impl Lanes {
    /// Puts a label covering `from..to` on the first lane with room; returns the lane.
    pub fn place(&mut self, from: f64, to: f64) -> usize {
        self.place_block(&[(from, to)])
    }

    /// Puts labels covering `spans` on consecutive lanes, from the first
    /// lane where all of them have room; returns that lane.
    pub fn place_block(&mut self, spans: &[(f64, f64)]) -> usize {
        let first = (0..=self.taken.len())
            .find(|&lane| spans.iter().enumerate().all(|(k, &(a, b))| self.free(lane + k, a, b)))
            .unwrap_or(self.taken.len());
        for (k, span) in spans.iter().enumerate() {
            while self.taken.len() <= first + k {
                self.taken.push(Vec::new());
            }
            self.taken[first + k].push(*span);
        }
        first
    }

    fn free(&self, lane: usize, from: f64, to: f64) -> bool {
        self.taken.get(lane).is_none_or(|l| l.iter().all(|&(a, b)| to + GAP <= a || b + GAP <= from))
    }

    /// Whether `from..to` fits on the first lane; takes it there if so.
    pub fn take_first(&mut self, from: f64, to: f64) -> bool {
        let fits = self.free(0, from, to);
        if fits {
            self.place_block(&[(from, to)]);
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
        assert_eq!(lanes.place(104.0, 200.0), 1, "closer than the gap counts as touching");
        assert_eq!(lanes.place(200.0, 300.0), 0, "a label with room goes back to the first lane");
        assert_eq!(lanes.count(), 2);
    }

    #[test]
    fn a_block_of_labels_stays_together_below_what_it_would_touch() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.place_block(&[(0.0, 100.0), (0.0, 80.0), (0.0, 120.0)]), 0);
        assert_eq!(lanes.place(300.0, 400.0), 0);
        // Lane 0 is free at 150..250, but lanes 1 and 2 are not at 110..250.
        assert_eq!(lanes.place_block(&[(150.0, 250.0), (110.0, 250.0)]), 3);
        assert_eq!(lanes.count(), 5);
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
