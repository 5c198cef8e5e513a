//! The subset of Icinga's filter DSL that API clients use, parsed with nom.
//!
//! Supported: attribute paths (`host.name`, `host.vars.os`), string, number,
//! boolean and null literals, array literals, `== != < <= > >= && || !`,
//! `in`, `match(glob, value)`, `regex(pattern, value)`, parentheses, and
//! variables (the object's bindings and `filter_vars`).
//!
//! Semantics, following Icinga where it is sensible:
//! - truthiness: null, false, 0, "", `[]` and `{}` are false, the rest true;
//! - `==` between different types is false, but integers and floats compare
//!   numerically; `<` and friends compare two numbers or two strings, any
//!   other pair is an error;
//! - a path into null or a missing key yields null, so `host.vars.os` works
//!   for a host without vars; an unknown top-level name is an error;
//! - `x in null` is false, `x in <not an array>` is an error;
//! - `match` is Icinga's glob (`*`, `?`); `regex` uses the `regex` crate, and a
//!   literal pattern is compiled (and checked) at parse time.
//!
//! Anything else (assignment, arithmetic, other functions, lambdas,
//! dictionaries, indexers, keywords) is refused with an error that names the
//! construct. Input length and nesting depth are bounded.

use nom::branch::alt;
use nom::bytes::complete::{escaped_transform, is_not, tag};
use nom::character::complete::{alpha1, alphanumeric1, char, multispace0};
use nom::combinator::{all_consuming, cut, map, not, opt, recognize, value};
use nom::multi::{many0, many0_count, separated_list0};
use nom::number::complete::recognize_float;
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::IResult;
use regex::Regex;
use serde_json::{Map, Number, Value};

use super::auth::wildcard_match;

/// Longest filter accepted, in bytes.
pub const MAX_LEN: usize = 64 * 1024;
/// Deepest nesting of parentheses, `!` and arrays accepted.
pub const MAX_DEPTH: usize = 64;

/// Why a filter could not be parsed or evaluated. Display texts are user-facing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// Not valid filter syntax.
    #[error("syntax error at position {position}: {message}")]
    Syntax { position: usize, message: String },
    /// Valid Icinga DSL perhaps, but outside the supported subset.
    #[error("unsupported filter construct {construct} at position {position}")]
    Unsupported { construct: String, position: usize },
    /// The expression failed on this object.
    #[error("{0}")]
    Eval(String),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

/// A parsed expression.
#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Path(Vec<String>),
    Array(Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    Match(Box<Expr>, Box<Expr>),
    Regex(Box<Expr>, Box<Expr>, Option<Regex>),
}

/// A parsed filter expression.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Parses `src`; a syntax error or an unsupported construct is an error that names it.
    pub fn parse(src: &str) -> Result<Filter, FilterError> {
        if src.len() > MAX_LEN {
            return Err(FilterError::Syntax {
                position: MAX_LEN,
                message: format!("longer than {MAX_LEN} bytes"),
            });
        }
        scan_unsupported(src)?;
        let depth = max_depth(src);
        if depth > MAX_DEPTH {
            return Err(FilterError::Syntax {
                position: 0,
                message: format!("nested deeper than {MAX_DEPTH}"),
            });
        }
        match all_consuming(delimited(multispace0, or_expr, multispace0))(src) {
            Ok((_, expr)) => {
                let expr = compile_regexes(expr)?;
                Ok(Filter { expr })
            }
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(syntax_error(src, e.input)),
            Err(nom::Err::Incomplete(_)) => Err(syntax_error(src, "")),
        }
    }

    /// Evaluates against `scope`: top-level names (`host`, `service`, `obj`,
    /// and every filter_vars key) map to JSON values; the result's truthiness decides.
    pub fn matches(&self, scope: &Map<String, Value>) -> Result<bool, FilterError> {
        Ok(truthy(&eval(&self.expr, scope)?))
    }
}

fn syntax_error(src: &str, rest: &str) -> FilterError {
    let position = src.len() - rest.len();
    let message = match rest.chars().next() {
        None => "unexpected end of the filter".to_string(),
        Some(c) => format!("unexpected '{c}'"),
    };
    FilterError::Syntax { position, message }
}

// ---------------------------------------------------------------------------
// Refusing what the subset does not cover, with a name for it.

const KEYWORDS: &[&str] = &[
    "var", "function", "if", "else", "for", "while", "return", "break", "continue", "const", "let", "object",
    "template", "apply", "import", "include", "globals", "locals", "this", "throw", "try",
];

/// Walks the source outside string literals and names the first construct
/// the subset does not support.
fn scan_unsupported(src: &str) -> Result<(), FilterError> {
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

/// The deepest nesting of brackets and `!` outside strings.
fn max_depth(src: &str) -> usize {
    let b = src.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i = skip_string(b, i);
                continue;
            }
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'!' => max = max.max(depth + 1),
            _ => {}
        }
        max = max.max(depth);
        i += 1;
    }
    // A run of `!` nests too: count the longest one.
    let bangs = src.split(|c: char| c != '!' && !c.is_whitespace()).map(|r| r.matches('!').count()).max();
    max.max(bangs.unwrap_or(0))
}

// ---------------------------------------------------------------------------
// The grammar: or < and < comparison/in < not < primary.

fn ws<'a, O>(
    inner: impl FnMut(&'a str) -> IResult<&'a str, O>,
) -> impl FnMut(&'a str) -> IResult<&'a str, O> {
    delimited(multispace0, inner, multispace0)
}

fn or_expr(i: &str) -> IResult<&str, Expr> {
    let (i, first) = and_expr(i)?;
    let (i, rest) = many0(preceded(ws(tag("||")), cut(and_expr)))(i)?;
    Ok((i, rest.into_iter().fold(first, |a, b| Expr::Or(Box::new(a), Box::new(b)))))
}

fn and_expr(i: &str) -> IResult<&str, Expr> {
    let (i, first) = cmp_expr(i)?;
    let (i, rest) = many0(preceded(ws(tag("&&")), cut(cmp_expr)))(i)?;
    Ok((i, rest.into_iter().fold(first, |a, b| Expr::And(Box::new(a), Box::new(b)))))
}

fn cmp_op(i: &str) -> IResult<&str, Cmp> {
    ws(alt((
        value(Cmp::Eq, tag("==")),
        value(Cmp::Ne, tag("!=")),
        value(Cmp::Le, tag("<=")),
        value(Cmp::Ge, tag(">=")),
        value(Cmp::Lt, tag("<")),
        value(Cmp::Gt, tag(">")),
        value(Cmp::In, terminated(tag("in"), not(alphanumeric1))),
    )))(i)
}

fn cmp_expr(i: &str) -> IResult<&str, Expr> {
    let (i, left) = unary(i)?;
    let (i, rest) = opt(pair(cmp_op, cut(unary)))(i)?;
    Ok((
        i,
        match rest {
            Some((op, right)) => Expr::Cmp(op, Box::new(left), Box::new(right)),
            None => left,
        },
    ))
}

fn unary(i: &str) -> IResult<&str, Expr> {
    alt((map(preceded(ws(char('!')), cut(unary)), |e| Expr::Not(Box::new(e))), primary))(i)
}

fn primary(i: &str) -> IResult<&str, Expr> {
    ws(alt((
        delimited(char('('), ws(or_expr), cut(char(')'))),
        call,
        map(array, Expr::Array),
        map(string, |s| Expr::Lit(Value::String(s))),
        map(number, Expr::Lit),
        keyword_literal,
        map(path, Expr::Path),
    )))(i)
}

fn identifier(i: &str) -> IResult<&str, &str> {
    recognize(pair(alt((alpha1, tag("_"))), many0_count(alt((alphanumeric1, tag("_"))))))(i)
}

fn path(i: &str) -> IResult<&str, Vec<String>> {
    let (i, first) = identifier(i)?;
    let (i, rest) = many0(preceded(char('.'), cut(identifier)))(i)?;
    let mut out = vec![first.to_string()];
    out.extend(rest.into_iter().map(String::from));
    Ok((i, out))
}

fn keyword_literal(i: &str) -> IResult<&str, Expr> {
    let word = |w: &'static str, v: Value| value(Expr::Lit(v), terminated(tag(w), not(alphanumeric1)));
    alt((word("true", Value::Bool(true)), word("false", Value::Bool(false)), word("null", Value::Null)))(i)
}

fn number(i: &str) -> IResult<&str, Value> {
    let (rest, text) = recognize_float(i)?;
    let v = match text.parse::<i64>() {
        Ok(n) => Value::Number(n.into()),
        Err(_) => match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => return Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Float))),
        },
    };
    Ok((rest, v))
}

fn string(i: &str) -> IResult<&str, String> {
    let escapes = alt((
        value("\"", char('"')),
        value("\\", char('\\')),
        value("\n", char('n')),
        value("\t", char('t')),
        value("\r", char('r')),
    ));
    let body = escaped_transform(is_not("\\\""), '\\', escapes);
    map(delimited(char('"'), opt(body), cut(char('"'))), Option::unwrap_or_default)(i)
}

fn array(i: &str) -> IResult<&str, Vec<Expr>> {
    delimited(char('['), separated_list0(ws(char(',')), ws(or_expr)), cut(ws(char(']'))))(i)
}

fn call(i: &str) -> IResult<&str, Expr> {
    let (i, name) = terminated(alt((tag("match"), tag("regex"))), ws(char('(')))(i)?;
    let (i, args) = cut(terminated(separated_list0(ws(char(',')), ws(or_expr)), ws(char(')'))))(i)?;
    let [pattern, value]: [Expr; 2] = match args.try_into() {
        Ok(a) => a,
        Err(_) => return Err(nom::Err::Failure(nom::error::Error::new(i, nom::error::ErrorKind::Count))),
    };
    let (p, v) = (Box::new(pattern), Box::new(value));
    Ok((i, if name == "match" { Expr::Match(p, v) } else { Expr::Regex(p, v, None) }))
}

// ---------------------------------------------------------------------------
// Regexes with a literal pattern are compiled once, at parse time.

fn compile(pattern: &str) -> Result<Regex, FilterError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| FilterError::Eval(format!("invalid regular expression '{pattern}': {e}")))
}

fn compile_regexes(e: Expr) -> Result<Expr, FilterError> {
    let boxed = |e: Box<Expr>| compile_regexes(*e).map(Box::new);
    Ok(match e {
        Expr::Regex(p, v, _) => {
            let re = match p.as_ref() {
                Expr::Lit(Value::String(s)) => Some(compile(s)?),
                _ => None,
            };
            Expr::Regex(boxed(p)?, boxed(v)?, re)
        }
        Expr::Not(a) => Expr::Not(boxed(a)?),
        Expr::And(a, b) => Expr::And(boxed(a)?, boxed(b)?),
        Expr::Or(a, b) => Expr::Or(boxed(a)?, boxed(b)?),
        Expr::Cmp(op, a, b) => Expr::Cmp(op, boxed(a)?, boxed(b)?),
        Expr::Match(a, b) => Expr::Match(boxed(a)?, boxed(b)?),
        Expr::Array(items) => Expr::Array(items.into_iter().map(compile_regexes).collect::<Result<_, _>>()?),
        other => other,
    })
}

// ---------------------------------------------------------------------------
// Evaluation.

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "Empty",
        Value::Bool(_) => "Boolean",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Dictionary",
    }
}

fn eval(e: &Expr, scope: &Map<String, Value>) -> Result<Value, FilterError> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::Path(p) => lookup(p, scope)?,
        Expr::Array(items) => Value::Array(items.iter().map(|x| eval(x, scope)).collect::<Result<_, _>>()?),
        Expr::Not(a) => Value::Bool(!truthy(&eval(a, scope)?)),
        Expr::And(a, b) => Value::Bool(truthy(&eval(a, scope)?) && truthy(&eval(b, scope)?)),
        Expr::Or(a, b) => Value::Bool(truthy(&eval(a, scope)?) || truthy(&eval(b, scope)?)),
        Expr::Cmp(op, a, b) => Value::Bool(compare(*op, &eval(a, scope)?, &eval(b, scope)?)?),
        Expr::Match(p, v) => Value::Bool(glob(&eval(p, scope)?, &eval(v, scope)?)?),
        Expr::Regex(p, v, re) => Value::Bool(regex_match(re.as_ref(), &eval(p, scope)?, &eval(v, scope)?)?),
    })
}

fn lookup(path: &[String], scope: &Map<String, Value>) -> Result<Value, FilterError> {
    let Some((first, rest)) = path.split_first() else { return Ok(Value::Null) };
    let mut cur = scope
        .get(first)
        .ok_or_else(|| FilterError::Eval(format!("Tried to access undefined script variable '{first}'")))?;
    for key in rest {
        match cur.get(key) {
            Some(v) => cur = v,
            None => return Ok(Value::Null),
        }
    }
    Ok(cur.clone())
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(op: Cmp, a: &Value, b: &Value) -> Result<bool, FilterError> {
    use std::cmp::Ordering;
    let order = || -> Result<Ordering, FilterError> {
        let ord = match (a, b) {
            (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
            (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
            _ => None,
        };
        ord.ok_or_else(|| {
            FilterError::Eval(format!("Cannot compare values of type {} and {}", type_name(a), type_name(b)))
        })
    };
    Ok(match op {
        Cmp::Eq => equal(a, b),
        Cmp::Ne => !equal(a, b),
        Cmp::Lt => order()?.is_lt(),
        Cmp::Le => order()?.is_le(),
        Cmp::Gt => order()?.is_gt(),
        Cmp::Ge => order()?.is_ge(),
        Cmp::In => match b {
            Value::Null => false,
            Value::Array(items) => items.iter().any(|x| equal(a, x)),
            other => {
                return Err(FilterError::Eval(format!(
                    "Invalid right side argument for 'in' operator: {}",
                    type_name(other)
                )))
            }
        },
    })
}

fn string_arg<'a>(func: &str, which: &str, v: &'a Value) -> Result<&'a str, FilterError> {
    v.as_str().ok_or_else(|| {
        FilterError::Eval(format!("{func}(): the {which} must be a String, not {}", type_name(v)))
    })
}

fn glob(pattern: &Value, value: &Value) -> Result<bool, FilterError> {
    let pattern = string_arg("match", "pattern", pattern)?;
    Ok(value.as_str().is_some_and(|text| wildcard_match(pattern, text)))
}

fn regex_match(compiled: Option<&Regex>, pattern: &Value, value: &Value) -> Result<bool, FilterError> {
    let Some(text) = value.as_str() else { return Ok(false) };
    match compiled {
        Some(re) => Ok(re.is_match(text)),
        None => Ok(compile(string_arg("regex", "pattern", pattern)?)?.is_match(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Map<String, Value> {
        let v = json!({
            "host": {"name": "web1", "vars": {"os": "linux", "prio": 3, "tags": ["a", "b"]}, "state": 1, "groups": ["linux"]},
            "service": {"name": "http", "host_name": "web1", "state": 0, "vars": null},
            "num": 2,
            "names": ["web1", "db1"],
        });
        v.as_object().cloned().unwrap_or_default()
    }

    fn check(src: &str) -> bool {
        let f = Filter::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        f.matches(&scope()).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn expressions_clients_send_evaluate_as_icinga_does() {
        let yes = [
            r#"host.name=="web1""#,
            r#"host.name == "web1" && host.vars.os == "linux""#,
            r#"match("web*", host.name)"#,
            r#"regex("^w.b[0-9]$", host.name)"#,
            "host.vars.prio > num",
            "host.vars.prio >= 3 && host.vars.prio <= 3.0",
            r#""linux" in host.groups"#,
            "host.name in names",
            r#"host.name in ["a", "web1"]"#,
            r#"!(service.host_name in ["a","b"])"#,
            "service.state != 0 || host.state == 1",
            "service.vars.missing == null",
            "host.vars.nothing.deeper == null",
            "!false && true",
            "host.state",
            r#""b" < "c""#,
            "-1 < 0",
        ];
        for src in yes {
            assert!(check(src), "{src} must match");
        }
        let no = [
            r#"host.name=="web2""#,
            r#"match("db*", host.name)"#,
            "host.vars.prio < num",
            r#""x" in host.groups"#,
            "host.vars.missing in host.vars.missing",
            "service.state",
            "!true",
            r#""""#,
            "[]",
            "0",
        ];
        for src in no {
            assert!(!check(src), "{src} must not match");
        }
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let cases = [
            ("host.name = \"x\"", "assignment"),
            ("host.vars.prio + 1 > 2", "'+'"),
            ("len(host.name) > 2", "function call 'len(...)'"),
            ("host.name.contains(\"w\")", "method call"),
            ("(x) => x", "lambda"),
            ("{ \"a\" = 1 }", "dictionary"),
            ("{{{raw}}}", "multi-line string"),
            ("var x", "keyword 'var'"),
            ("host.vars.prio * 2", "'*'"),
            ("host.name == 'web1'", "single-quoted"),
        ];
        for (src, construct) in cases {
            match Filter::parse(src) {
                Err(FilterError::Unsupported { construct: c, .. }) => {
                    assert!(c.contains(construct), "{src}: named '{c}', expected it to mention {construct}")
                }
                other => panic!("{src}: expected Unsupported({construct}), got {other:?}"),
            }
        }
    }

    #[test]
    fn syntax_errors_say_where() {
        for src in
            ["host.name ==", "(host.name == \"a\"", "match(\"a\")", "\"open", "host. name", "", "[1, 2"]
        {
            assert!(
                matches!(Filter::parse(src), Err(FilterError::Syntax { .. })),
                "{src} must be a syntax error"
            );
        }
        let e = Filter::parse("host.name == == 1").unwrap_err();
        assert!(e.to_string().contains("position"), "{e}");
    }

    #[test]
    fn evaluation_errors_are_clean() {
        let eval_err = |src: &str| Filter::parse(src).unwrap().matches(&scope()).unwrap_err();
        assert!(eval_err("nosuch == 1").to_string().contains("undefined script variable 'nosuch'"));
        assert!(eval_err("host.name < 3").to_string().contains("Cannot compare"));
        assert!(eval_err("1 in host.name").to_string().contains("'in'"));
        assert!(matches!(Filter::parse(r#"regex("(", host.name)"#), Err(FilterError::Eval(_))));
    }

    #[test]
    fn hostile_input_is_bounded() {
        let deep = format!("{}true{}", "(".repeat(500), ")".repeat(500));
        assert!(Filter::parse(&deep).is_err());
        let bangs = format!("{}true", "!".repeat(500));
        assert!(Filter::parse(&bangs).is_err());
        assert!(Filter::parse(&"a".repeat(MAX_LEN + 1)).is_err());
        assert!(Filter::parse(&"1".repeat(300)).is_ok(), "a long number is just a float");
        assert!(Filter::parse(&"1".repeat(400)).is_err(), "a number beyond f64 is an error, not infinity");
    }

    proptest::proptest! {
        #[test]
        fn parse_and_match_never_panic(src in "\\PC{0,80}") {
            if let Ok(f) = Filter::parse(&src) {
                let _ = f.matches(&scope());
            }
        }

        #[test]
        fn grammar_shaped_input_never_panics(src in "[a-z.\"()!=<>&| \\[\\],0-9]{0,60}") {
            if let Ok(f) = Filter::parse(&src) {
                let _ = f.matches(&scope());
            }
        }
    }
}
