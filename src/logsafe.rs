//! Peer-chosen text in log lines (identities, method names, request
//! targets, user agents, object names): control characters are escaped, so
//! a peer can neither forge a log line nor move a terminal's cursor, and the
//! length is capped, so one request cannot write a megabyte of log.

use std::fmt;

/// Characters of peer-chosen text shown in a log line; the rest is counted.
pub const MAX_CHARS: usize = 200;

/// Displays peer-chosen text safely for a log line.
pub struct Text<'a>(pub &'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, c) in self.0.chars().enumerate() {
            if shown == MAX_CHARS {
                let (at, _) = self.0.char_indices().nth(MAX_CHARS).unwrap_or((self.0.len(), ' '));
                return write!(f, "…({} more bytes)", self.0.len() - at);
            }
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_fmt(format_args!("{c}"))?;
            }
        }
        Ok(())
    }
}

/// Peer-chosen text made safe for a log line, as an owned string.
pub fn text(s: &str) -> String {
    Text(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_forge_a_line() {
        let forged = "web1'\n2026-01-01 INFO 'api' stopped.\u{1b}[2J";
        let shown = text(forged);
        assert!(!shown.contains('\n') && !shown.contains('\u{1b}'), "{shown}");
        assert_eq!(shown, "web1'\\n2026-01-01 INFO 'api' stopped.\\u{1b}[2J");
    }

    #[test]
    fn long_text_is_cut_and_counted() {
        let long = "é".repeat(1000);
        let shown = text(&long);
        assert!(shown.starts_with(&"é".repeat(MAX_CHARS)));
        assert!(shown.ends_with(&format!("…({} more bytes)", 2 * (1000 - MAX_CHARS))), "{shown}");
        assert_eq!(text("plain"), "plain");
    }
}
