//! The grammar: or < and < comparison/in < not < primary.
//!
//! The parser keeps the levels it is inside (parentheses, arrays, calls) on
//! a stack of its own instead of recursing, so no input, however deep or
//! long, costs it stack: a debug build spent 5 to 10 KB of stack per level
//! in a recursive descent. nom parses the tokens and leaves. `&&` and `||`
//! chains are lists, so a chain of any length is also compiled, evaluated
//! and dropped without recursing per operand; nesting (parentheses,
//! brackets, calls and `!`) is counted and stops at
//! [`MAX_DEPTH`](super::MAX_DEPTH), which bounds what recursion is left
//! (compiling and dropping the tree).

use nom::branch::alt;
use nom::bytes::complete::{escaped_transform, is_not, tag};
use nom::character::complete::{alpha1, alphanumeric1, char, multispace0};
use nom::combinator::{cut, map, not, opt, recognize, value};
use nom::error::{Error, ErrorKind};
use nom::multi::{many0, many0_count};
use nom::number::complete::recognize_float;
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::IResult;
use serde_json::{Number, Value};

use super::{FilterError, MAX_DEPTH, MAX_TERMS};

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
}

/// The two functions of the subset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Func {
    /// `match(glob, value)`.
    Match,
    /// `regex(pattern, value)`.
    Regex,
}

impl Func {
    /// The function's name in filters.
    pub(super) fn name(self) -> &'static str {
        match self {
            Func::Match => "match",
            Func::Regex => "regex",
        }
    }
}

/// A parsed expression. Only nesting recurses; chains are flat.
#[derive(Debug)]
pub(super) enum Expr {
    Lit(Value),
    Path(Vec<String>),
    Array(Vec<Expr>),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    Call(Func, Box<Expr>, Box<Expr>),
}

/// Parses a whole filter (already checked for unsupported constructs).
pub(super) fn parse(src: &str) -> Result<Expr, FilterError> {
    let mut parser = Parser { src, rest: src, levels: vec![Level::new(Close::End)], depth: 0, terms: 0 };
    let mut want = Want::Operand;
    loop {
        want = match want {
            Want::Operand => parser.operand()?,
            Want::Operator(expr, compared) => parser.operator(expr, compared)?,
            Want::Nothing(expr) => return Ok(expr),
        };
    }
}

/// What ends a level.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Close {
    /// The end of the filter.
    End,
    /// `)` of a parenthesis.
    Paren,
    /// `]` of an array literal.
    Bracket,
    /// `)` of a call.
    Call(Func),
}

/// One level the parser is inside, and what it has read of it.
#[derive(Debug)]
struct Level {
    close: Close,
    /// Finished items of an array or call.
    items: Vec<Expr>,
    /// Finished operands of `||`.
    ors: Vec<Expr>,
    /// Finished operands of the current `&&` chain.
    ands: Vec<Expr>,
    /// A comparison's left side and operator, waiting for its right side.
    left: Option<(Expr, Cmp)>,
    /// `!`s read before the operand being read.
    bangs: usize,
}

impl Level {
    fn new(close: Close) -> Level {
        Level { close, items: vec![], ors: vec![], ands: vec![], left: None, bangs: 0 }
    }

    /// The level's expression, `last` being its last comparison.
    fn finish(&mut self, last: Expr) -> Expr {
        self.ands.push(last);
        self.end_and();
        list(std::mem::take(&mut self.ors), Expr::Or)
    }

    fn end_and(&mut self) {
        let ands = std::mem::take(&mut self.ands);
        self.ors.push(list(ands, Expr::And));
    }
}

/// What the parser expects next.
enum Want {
    /// An operand (after `!`, an operator, an opening or at the start).
    Operand,
    /// An operator or a closing, after an operand; `true` if the operand is
    /// a comparison already (they do not chain).
    Operator(Expr, bool),
    /// Nothing more: the filter is this.
    Nothing(Expr),
}

struct Parser<'a> {
    src: &'a str,
    rest: &'a str,
    levels: Vec<Level>,
    /// Open levels and pending `!`s.
    depth: usize,
    /// Literals and paths read so far.
    terms: usize,
}

impl<'a> Parser<'a> {
    fn operand(&mut self) -> Result<Want, FilterError> {
        self.rest = skip_ws(self.rest);
        if let Some(rest) = self.rest.strip_prefix('!') {
            self.deeper()?;
            self.top().bangs += 1;
            self.rest = rest;
            return Ok(Want::Operand);
        }
        if let Some(rest) = self.rest.strip_prefix('(') {
            return self.open(Close::Paren, rest);
        }
        if let Some(rest) = self.rest.strip_prefix('[') {
            return self.open(Close::Bracket, rest);
        }
        if let Ok((rest, func)) = call_head(self.rest) {
            return self.open(Close::Call(func), rest);
        }
        let (rest, leaf) = leaf(self.rest).map_err(|e| self.nom_error(e))?;
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.error(format!("more than {MAX_TERMS} terms")));
        }
        self.rest = rest;
        Ok(self.complete(leaf))
    }

    /// Enters a level; an array or call may be empty.
    fn open(&mut self, close: Close, rest: &'a str) -> Result<Want, FilterError> {
        self.deeper()?;
        self.levels.push(Level::new(close));
        self.rest = skip_ws(rest);
        let end = match close {
            Close::Bracket => ']',
            Close::Call(_) => ')',
            Close::End | Close::Paren => return Ok(Want::Operand),
        };
        match self.rest.strip_prefix(end) {
            Some(rest) => {
                self.rest = rest;
                self.leave()
            }
            None => Ok(Want::Operand),
        }
    }

    /// An operand is read: its `!`s apply, and it may end a comparison.
    fn complete(&mut self, mut expr: Expr) -> Want {
        let level = self.top();
        for _ in 0..level.bangs {
            expr = Expr::Not(Box::new(expr));
        }
        let bangs = std::mem::take(&mut level.bangs);
        let left = level.left.take();
        self.depth -= bangs;
        match left {
            Some((left, op)) => Want::Operator(Expr::Cmp(op, Box::new(left), Box::new(expr)), true),
            None => Want::Operator(expr, false),
        }
    }

    fn operator(&mut self, expr: Expr, compared: bool) -> Result<Want, FilterError> {
        self.rest = skip_ws(self.rest);
        if let (false, Ok((rest, op))) = (compared, cmp_op(self.rest)) {
            self.top().left = Some((expr, op));
            self.rest = rest;
        } else if let Some(rest) = self.rest.strip_prefix("&&") {
            self.top().ands.push(expr);
            self.rest = rest;
        } else if let Some(rest) = self.rest.strip_prefix("||") {
            let level = self.top();
            level.ands.push(expr);
            level.end_and();
            self.rest = rest;
        } else {
            let whole = self.top().finish(expr);
            return self.close(whole);
        }
        Ok(Want::Operand)
    }

    /// A level's expression is complete: what may follow is its closing
    /// or, in an array or call, a comma.
    fn close(&mut self, whole: Expr) -> Result<Want, FilterError> {
        let close = self.top().close;
        let next = self.rest.chars().next();
        match (close, next) {
            (Close::End, None) => return Ok(Want::Nothing(whole)),
            (Close::Paren, Some(')')) => {
                self.rest = &self.rest[1..];
                self.levels.pop();
                self.depth -= 1;
                return Ok(self.complete(whole));
            }
            (Close::Bracket | Close::Call(_), Some(',' | ']' | ')')) => self.top().items.push(whole),
            _ => return Err(self.unexpected()),
        }
        match (close, next) {
            (_, Some(',')) => {
                self.rest = &self.rest[1..];
                Ok(Want::Operand)
            }
            (Close::Bracket, Some(']')) | (Close::Call(_), Some(')')) => {
                self.rest = &self.rest[1..];
                self.leave()
            }
            _ => Err(self.unexpected()),
        }
    }

    /// Leaves an array or a call, its closing read: it is an operand of
    /// the level around it.
    fn leave(&mut self) -> Result<Want, FilterError> {
        let level = self.levels.pop().ok_or_else(|| self.unexpected())?;
        self.depth -= 1;
        let expr = match level.close {
            Close::Call(func) => {
                let two = |_| self.error(format!("{}() takes two arguments", func.name()));
                let [pattern, value]: [Expr; 2] = level.items.try_into().map_err(two)?;
                Expr::Call(func, Box::new(pattern), Box::new(value))
            }
            _ => Expr::Array(level.items),
        };
        Ok(self.complete(expr))
    }

    /// One more level of nesting, if the limit allows.
    fn deeper(&mut self) -> Result<(), FilterError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        Ok(())
    }

    fn top(&mut self) -> &mut Level {
        debug_assert!(!self.levels.is_empty(), "the outermost level is never left");
        if self.levels.is_empty() {
            self.levels.push(Level::new(Close::End));
        }
        let last = self.levels.len() - 1;
        &mut self.levels[last]
    }

    fn error(&self, message: String) -> FilterError {
        FilterError::Syntax { position: self.src.len() - self.rest.len(), message }
    }

    fn unexpected(&self) -> FilterError {
        self.error(match self.rest.chars().next() {
            None => "unexpected end of the filter".to_string(),
            Some(c) => format!("unexpected '{c}'"),
        })
    }

    fn nom_error(&self, e: nom::Err<Error<&str>>) -> FilterError {
        let rest = match e {
            nom::Err::Error(e) | nom::Err::Failure(e) => e.input,
            nom::Err::Incomplete(_) => "",
        };
        Parser { rest, levels: vec![], ..*self }.unexpected()
    }
}

/// One operand, or the list of two or more.
fn list(mut operands: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if operands.len() == 1 {
        if let Some(only) = operands.pop() {
            return only;
        }
    }
    make(operands)
}

fn ws<'a, O>(
    inner: impl FnMut(&'a str) -> IResult<&'a str, O>,
) -> impl FnMut(&'a str) -> IResult<&'a str, O> {
    delimited(multispace0, inner, multispace0)
}

/// Skips what nom's `multispace0` skips.
fn skip_ws(i: &str) -> &str {
    i.trim_start_matches([' ', '\t', '\r', '\n'])
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

/// `match(` or `regex(`.
fn call_head(i: &str) -> IResult<&str, Func> {
    let name = alt((value(Func::Match, tag("match")), value(Func::Regex, tag("regex"))));
    terminated(name, ws(char('(')))(i)
}

/// What does not nest: a string, a number, `true`/`false`/`null`, a path.
fn leaf(i: &str) -> IResult<&str, Expr> {
    match i.chars().next() {
        Some('"') => map(string, |s| Expr::Lit(Value::String(s)))(i),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => alt((keyword_literal, map(path, Expr::Path)))(i),
        _ => map(number, Expr::Lit)(i),
    }
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
    let word = |w: &'static str, v: Value| value(v, terminated(tag(w), not(alphanumeric1)));
    let literal =
        alt((word("true", Value::Bool(true)), word("false", Value::Bool(false)), word("null", Value::Null)));
    map(literal, Expr::Lit)(i)
}

fn number(i: &str) -> IResult<&str, Value> {
    let (rest, text) = recognize_float(i)?;
    let v = match text.parse::<i64>() {
        Ok(n) => Value::Number(n.into()),
        Err(_) => match text.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => return Err(nom::Err::Error(Error::new(i, ErrorKind::Float))),
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
