//! A parsed filter compiled to a flat program for a small stack machine.
//! Evaluation never recurses, whatever the filter's shape, and it can stop
//! after any instruction and resume later: a caller yields to its runtime
//! between slices of work.

use serde_json::Value;

use super::budget::text_steps;
use super::grammar::{Cmp, Expr, Func};
use super::pattern::{check_regex, Kind};
use super::value::{compare, Val, NULL};
use super::{Binding, Evaluator, FilterError, Scope};

/// One instruction.
#[derive(Debug)]
pub(super) enum Op {
    /// Pushes a literal.
    Lit(Value),
    /// Pushes the value at a path.
    Path(Vec<String>),
    /// Replaces the top `n` values with an array of them.
    Array(usize),
    /// Replaces the top value with its negated truthiness.
    Not,
    /// Replaces the top two values with the comparison's result.
    Cmp(Cmp),
    /// Replaces the pattern and the value on top with the function's result.
    Call(Func),
    /// Inside `&&`: a falsy top ends the chain as `false` at the given
    /// instruction, a truthy one is dropped and the chain goes on.
    AndElse(usize),
    /// Inside `||`: a truthy top ends the chain as `true`, a falsy one is dropped.
    OrElse(usize),
    /// The last operand of a chain: replaces the top with its truthiness.
    Truth,
}

/// Compiles `expr`; checks literal `regex()` patterns on the way.
pub(super) fn compile(expr: Expr) -> Result<Vec<Op>, FilterError> {
    let mut ops = Vec::new();
    emit(expr, &mut ops)?;
    Ok(ops)
}

fn emit(expr: Expr, ops: &mut Vec<Op>) -> Result<(), FilterError> {
    match expr {
        Expr::Lit(v) => ops.push(Op::Lit(v)),
        Expr::Path(p) => ops.push(Op::Path(p)),
        Expr::Array(items) => {
            let n = items.len();
            for item in items {
                emit(item, ops)?;
            }
            ops.push(Op::Array(n));
        }
        Expr::Not(a) => {
            emit(*a, ops)?;
            ops.push(Op::Not);
        }
        Expr::And(items) => chain(items, ops, Op::AndElse)?,
        Expr::Or(items) => chain(items, ops, Op::OrElse)?,
        Expr::Cmp(op, a, b) => binary(*a, *b, Op::Cmp(op), ops)?,
        Expr::Call(func, pattern, value) => {
            if let (Func::Regex, Expr::Lit(Value::String(p))) = (func, pattern.as_ref()) {
                check_regex(p)?;
            }
            binary(*pattern, *value, Op::Call(func), ops)?;
        }
    }
    Ok(())
}

fn binary(a: Expr, b: Expr, op: Op, ops: &mut Vec<Op>) -> Result<(), FilterError> {
    emit(a, ops)?;
    emit(b, ops)?;
    ops.push(op);
    Ok(())
}

/// A chain's operands, each but the last followed by its jump to the end.
fn chain(items: Vec<Expr>, ops: &mut Vec<Op>, jump: fn(usize) -> Op) -> Result<(), FilterError> {
    let mut jumps = Vec::with_capacity(items.len());
    for item in items {
        emit(item, ops)?;
        jumps.push(ops.len());
        ops.push(jump(0));
    }
    // The last operand ends the chain by its own truthiness.
    if let Some(last) = jumps.pop() {
        ops[last] = Op::Truth;
    }
    let end = ops.len();
    for at in jumps {
        ops[at] = jump(end);
    }
    Ok(())
}

/// One evaluation in progress: the program, where it is, and its stack.
#[derive(Debug)]
pub struct Run<'a> {
    ops: &'a [Op],
    next: usize,
    stack: Vec<Val<'a>>,
}

impl<'a> Run<'a> {
    /// An evaluation of `ops` at its start.
    pub(super) fn new(ops: &'a [Op]) -> Run<'a> {
        Run { ops, next: 0, stack: Vec::new() }
    }

    /// Runs on until the result is known (`Some`) or the evaluator asks
    /// for a pause (`None`: call again to go on).
    pub fn resume(&mut self, scope: &Scope<'a>, eval: &mut Evaluator) -> Result<Option<bool>, FilterError> {
        while let Some(op) = self.ops.get(self.next) {
            self.next += 1;
            eval.budget.charge(1)?;
            self.step(op, scope, eval)?;
            if eval.budget.pause_due() {
                return Ok(None);
            }
        }
        Ok(Some(self.pop().truthy()))
    }

    fn step(&mut self, op: &'a Op, scope: &Scope<'a>, eval: &mut Evaluator) -> Result<(), FilterError> {
        let v = match op {
            Op::Lit(v) => Val::Json(v),
            Op::Path(path) => lookup(path, scope, eval)?,
            Op::Array(n) => {
                eval.budget.charge(*n as u64)?;
                Val::List(self.stack.split_off(self.stack.len().saturating_sub(*n)))
            }
            Op::Not => Val::Bool(!self.pop().truthy()),
            Op::Truth => Val::Bool(self.pop().truthy()),
            Op::Cmp(c) => {
                let (a, b) = self.pop_two();
                Val::Bool(compare(*c, &a, &b, &mut eval.budget)?)
            }
            Op::Call(func) => {
                let (pattern, value) = self.pop_two();
                Val::Bool(call(*func, &pattern, &value, eval)?)
            }
            Op::AndElse(end) | Op::OrElse(end) => {
                self.end_chain_if(matches!(op, Op::OrElse(_)), *end);
                return Ok(());
            }
        };
        self.stack.push(v);
        Ok(())
    }

    /// Ends the chain at `end` with `ends` if the top's truthiness is `ends`;
    /// otherwise drops the top.
    fn end_chain_if(&mut self, ends: bool, end: usize) {
        let top = self.pop();
        if top.truthy() == ends {
            self.stack.push(Val::Bool(ends));
            self.next = end;
        }
    }

    fn pop(&mut self) -> Val<'a> {
        let top = self.stack.pop();
        debug_assert!(top.is_some(), "a compiled program never pops an empty stack");
        top.unwrap_or(Val::Json(&NULL))
    }

    fn pop_two(&mut self) -> (Val<'a>, Val<'a>) {
        let b = self.pop();
        (self.pop(), b)
    }
}

/// The value at `path`: the first name from the scope, then keys; a path
/// into null or a missing key is null, an unknown name an error.
fn lookup<'a>(path: &[String], scope: &Scope<'a>, eval: &mut Evaluator) -> Result<Val<'a>, FilterError> {
    let Some((first, keys)) = path.split_first() else { return Ok(Val::Json(&NULL)) };
    eval.budget.charge(path.iter().map(|key| 1 + text_steps(key.len())).sum())?;
    let binding = scope
        .get(first)
        .ok_or_else(|| FilterError::Eval(format!("Tried to access undefined script variable '{first}'")))?;
    let (mut cur, keys) = match (binding, keys.split_first()) {
        (Binding::Attrs(attrs), None) => return Ok(Val::Dict(attrs)),
        (Binding::Attrs(attrs), Some((key, rest))) => (attrs.get(key).unwrap_or(&NULL), rest),
        (Binding::Value(v), _) => (v, keys),
    };
    for key in keys {
        cur = cur.get(key).unwrap_or(&NULL);
    }
    Ok(Val::Json(cur))
}

/// `match(glob, value)` and `regex(pattern, value)`: a value that is not a
/// string never matches; a pattern that is not one is an error (`regex`
/// looks at the value first, as before).
fn call(func: Func, pattern: &Val, value: &Val, eval: &mut Evaluator) -> Result<bool, FilterError> {
    let kind = match func {
        Func::Match => Kind::Glob,
        Func::Regex => Kind::Regex,
    };
    let text = value.as_str();
    if func == Func::Regex && text.is_none() {
        return Ok(false);
    }
    let pattern = pattern.as_str().ok_or_else(|| {
        let name = func.name();
        FilterError::Eval(format!("{name}(): the pattern must be a String, not {}", pattern.type_name()))
    })?;
    match text {
        Some(text) => eval.patterns.is_match(kind, pattern, text, &mut eval.budget),
        None => Ok(false),
    }
}
