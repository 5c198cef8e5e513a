//! Refusing what the subset does not cover, with a name for it: one pass
//! over the source, outside string literals, before the grammar runs.

use super::FilterError;

const KEYWORDS: &[&str] = &[
    "var", "function", "if", "else", "for", "while", "return", "break", "continue", "const", "let", "object",
    "template", "apply", "import", "include", "globals", "locals", "this", "throw", "try",
];

/// Walks the source outside string literals and names the first construct
/// the subset does not support.
pub(super) fn scan_unsupported(src: &str) -> Result<(), FilterError> {
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            i = skip_string(b, i);
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            check_identifier(src, start, i)?;
            continue;
        }
        if let Some(construct) = unsupported_operator(b, i) {
            return Err(FilterError::Unsupported { construct: construct.to_string(), position: i });
        }
        i += 1;
    }
    Ok(())
}

fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() && b[i] != b'"' {
        i += if b[i] == b'\\' { 2 } else { 1 };
    }
    i + 1
}

fn check_identifier(src: &str, start: usize, end: usize) -> Result<(), FilterError> {
    let word = &src[start..end];
    let unsupported = |construct: String| Err(FilterError::Unsupported { construct, position: start });
    if KEYWORDS.contains(&word) {
        return unsupported(format!("keyword '{word}'"));
    }
    let next = src[end..].trim_start().chars().next();
    let after_dot = src[..start].trim_end().ends_with('.');
    if next == Some('(') && !after_dot && word != "match" && word != "regex" {
        return unsupported(format!("function call '{word}(...)'"));
    }
    if next == Some('(') && after_dot {
        return unsupported(format!("method call '.{word}(...)'"));
    }
    Ok(())
}

fn unsupported_operator(b: &[u8], i: usize) -> Option<&'static str> {
    let next = b.get(i + 1).copied();
    let prev = if i > 0 { b.get(i - 1).copied() } else { None };
    match b[i] {
        b'=' if next == Some(b'>') => Some("lambda '=>'"),
        b'=' if next != Some(b'=') && !matches!(prev, Some(b'=' | b'!' | b'<' | b'>')) => {
            Some("assignment '='")
        }
        b'+' => Some("arithmetic operator '+'"),
        b'*' => Some("arithmetic operator '*'"),
        b'/' => Some("arithmetic operator '/'"),
        b'%' => Some("arithmetic operator '%'"),
        b'-' if !next.is_some_and(|c| c.is_ascii_digit() || c == b'.') => Some("arithmetic operator '-'"),
        b'{' if b.get(i..i + 3) == Some(b"{{{") => Some("multi-line string '{{{'"),
        b'{' | b'}' => Some("dictionary literal '{...}'"),
        b';' => Some("statement separator ';'"),
        b'&' if next != Some(b'&') && prev != Some(b'&') => Some("bitwise operator '&'"),
        b'|' if next != Some(b'|') && prev != Some(b'|') => Some("bitwise operator '|'"),
        b'^' => Some("bitwise operator '^'"),
        b'~' => Some("operator '~'"),
        b'?' => Some("conditional operator '?'"),
        b'\'' => Some("single-quoted string"),
        b'$' => Some("macro '$...$'"),
        _ => None,
    }
}
