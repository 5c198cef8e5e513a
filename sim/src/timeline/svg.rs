//! Writing SVG elements: escaped text, marks with a tooltip, lines.

use std::fmt::Write as _;

use super::layout::{Anchor, SIZE};

/// `s` with the characters XML gives a meaning escaped.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The body of an SVG document being written.
#[derive(Default)]
pub struct Svg {
    /// What has been written so far.
    pub out: String,
}

impl Svg {
    /// A label; `size` other than the default is written out so that its box can be computed.
    pub fn text(&mut self, x: f64, y: f64, anchor: Anchor, class: &str, size: f64, text: &str) {
        let size_attr = if size == SIZE { String::new() } else { format!(r#" font-size="{size}""#) };
        let _ = write!(
            self.out,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{}" class="{class}"{size_attr}>{}</text>"#,
            anchor.svg(),
            esc(text)
        );
    }

    /// A rectangle with a tooltip (none if `tip` is empty).
    pub fn rect(&mut self, (x, y, w, h): (f64, f64, f64, f64), class: &str, tip: &str) {
        let _ =
            write!(self.out, r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" class="{class}""#);
        self.close(tip, "rect");
    }

    /// A line with a tooltip (none if `tip` is empty).
    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), class: &str, tip: &str) {
        let _ =
            write!(self.out, r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" class="{class}""#);
        self.close(tip, "line");
    }

    fn close(&mut self, tip: &str, element: &str) {
        if tip.is_empty() {
            self.out.push_str("/>");
        } else {
            let _ = write!(self.out, "><title>{}</title></{element}>", esc(tip));
        }
    }

    /// Opens a group with raw attributes (already escaped).
    pub fn open(&mut self, attrs: &str) {
        let _ = write!(self.out, "<g {attrs}>");
    }

    /// Closes the innermost group.
    pub fn close_group(&mut self) {
        self.out.push_str("</g>");
    }
}
