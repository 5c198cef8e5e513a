//! Values during evaluation: borrowed from the object, the request or the
//! filter wherever they can be, and compared with every step charged.

use serde_json::{Map, Number, Value};

use super::budget::{text_steps, Budget};
use super::grammar::Cmp;
use super::FilterError;

/// What a missing key or an absent host evaluates to.
pub(super) static NULL: Value = Value::Null;

/// One value on the evaluation stack.
#[derive(Debug, Clone)]
pub(super) enum Val<'a> {
    /// A JSON value of the object, of `filter_vars` or of the filter.
    Json(&'a Value),
    /// An object's attributes, bound as a whole (`host`, `obj`).
    Dict(&'a Map<String, Value>),
    /// The result of an operator.
    Bool(bool),
    /// An array literal, its items borrowed in turn.
    List(Vec<Val<'a>>),
}

/// A value seen one level at a time, whatever it is made of.
#[derive(Clone, Copy)]
enum Node<'v> {
    Null,
    Bool(bool),
    Num(&'v Number),
    Str(&'v str),
    Json(&'v [Value]),
    List(&'v [Val<'v>]),
    Dict(&'v Map<String, Value>),
}

fn json_node(v: &Value) -> Node<'_> {
    match v {
        Value::Null => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Number(n) => Node::Num(n),
        Value::String(s) => Node::Str(s),
        Value::Array(items) => Node::Json(items),
        Value::Object(map) => Node::Dict(map),
    }
}

impl<'a> Val<'a> {
    fn node(&self) -> Node<'_> {
        match self {
            Val::Json(v) => json_node(v),
            Val::Dict(map) => Node::Dict(map),
            Val::Bool(b) => Node::Bool(*b),
            Val::List(items) => Node::List(items),
        }
    }

    /// Icinga's truthiness: null, false, 0, "", `[]` and `{}` are false.
    pub(super) fn truthy(&self) -> bool {
        match self.node() {
            Node::Null => false,
            Node::Bool(b) => b,
            Node::Num(n) => n.as_f64().is_some_and(|f| f != 0.0),
            Node::Str(s) => !s.is_empty(),
            Node::Json(items) => !items.is_empty(),
            Node::List(items) => !items.is_empty(),
            Node::Dict(map) => !map.is_empty(),
        }
    }

    /// The type's name as Icinga's messages spell it.
    pub(super) fn type_name(&self) -> &'static str {
        match self.node() {
            Node::Null => "Empty",
            Node::Bool(_) => "Boolean",
            Node::Num(_) => "Number",
            Node::Str(_) => "String",
            Node::Json(_) | Node::List(_) => "Array",
            Node::Dict(_) => "Dictionary",
        }
    }

    /// The text, if this is a string.
    pub(super) fn as_str(&self) -> Option<&'a str> {
        match self {
            Val::Json(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

/// Applies a comparison operator.
pub(super) fn compare(op: Cmp, a: &Val, b: &Val, budget: &mut Budget) -> Result<bool, FilterError> {
    Ok(match op {
        Cmp::Eq => equal(a, b, budget)?,
        Cmp::Ne => !equal(a, b, budget)?,
        Cmp::Lt => order(a, b, budget)?.is_lt(),
        Cmp::Le => order(a, b, budget)?.is_le(),
        Cmp::Gt => order(a, b, budget)?.is_gt(),
        Cmp::Ge => order(a, b, budget)?.is_ge(),
        Cmp::In => contains(b, a, budget)?,
    })
}

/// `<` and friends: two numbers or two strings, any other pair is an error.
fn order(a: &Val, b: &Val, budget: &mut Budget) -> Result<std::cmp::Ordering, FilterError> {
    let ord = match (a.node(), b.node()) {
        (Node::Num(x), Node::Num(y)) => x.as_f64().partial_cmp(&y.as_f64()),
        (Node::Str(x), Node::Str(y)) => {
            budget.charge(text_steps(x.len().min(y.len())))?;
            Some(x.cmp(y))
        }
        _ => None,
    };
    ord.ok_or_else(|| {
        FilterError::Eval(format!("Cannot compare values of type {} and {}", a.type_name(), b.type_name()))
    })
}

/// `needle in haystack`: false for null, an error for anything but an array.
fn contains(haystack: &Val, needle: &Val, budget: &mut Budget) -> Result<bool, FilterError> {
    match haystack.node() {
        Node::Null => Ok(false),
        Node::Json(items) => any_equal(needle, items.iter().map(Val::Json), budget),
        Node::List(items) => any_equal(needle, items.iter().cloned(), budget),
        _ => Err(FilterError::Eval(format!(
            "Invalid right side argument for 'in' operator: {}",
            haystack.type_name()
        ))),
    }
}

fn any_equal<'v>(
    needle: &Val,
    items: impl Iterator<Item = Val<'v>>,
    budget: &mut Budget,
) -> Result<bool, FilterError> {
    for item in items {
        if equal(needle, &item, budget)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `==`: values of different types differ, but two numbers at the top
/// compare numerically (inside arrays and dictionaries, JSON equality).
/// Walks both values with a stack of its own, so depth costs no recursion.
pub(super) fn equal(a: &Val, b: &Val, budget: &mut Budget) -> Result<bool, FilterError> {
    let mut pending = vec![(a.node(), b.node(), true)];
    while let Some((a, b, top)) = pending.pop() {
        budget.charge(1)?;
        if !same_level(a, b, top, &mut pending, budget)? {
            return Ok(false);
        }
    }
    Ok(true)
}

type Pending<'v> = Vec<(Node<'v>, Node<'v>, bool)>;

/// Whether `a` and `b` agree at their own level; their children go to `pending`.
fn same_level<'v>(
    a: Node<'v>,
    b: Node<'v>,
    top: bool,
    pending: &mut Pending<'v>,
    budget: &mut Budget,
) -> Result<bool, FilterError> {
    Ok(match (a, b) {
        (Node::Null, Node::Null) => true,
        (Node::Bool(x), Node::Bool(y)) => x == y,
        (Node::Num(x), Node::Num(y)) if top => x.as_f64() == y.as_f64(),
        (Node::Num(x), Node::Num(y)) => x == y,
        (Node::Str(x), Node::Str(y)) => {
            budget.charge(text_steps(x.len().min(y.len())))?;
            x == y
        }
        (Node::Dict(x), Node::Dict(y)) => same_keys(x, y, pending, budget)?,
        (a, b) => match (Items::of(a), Items::of(b)) {
            (Some(x), Some(y)) if x.len() == y.len() => {
                pending.extend(x.zip(y).map(|(a, b)| (a, b, false)));
                true
            }
            _ => false,
        },
    })
}

fn same_keys<'v>(
    x: &'v Map<String, Value>,
    y: &'v Map<String, Value>,
    pending: &mut Pending<'v>,
    budget: &mut Budget,
) -> Result<bool, FilterError> {
    if x.len() != y.len() {
        return Ok(false);
    }
    // A lookup compares the key with about log2(len) others.
    let compares = u64::from(y.len().ilog2()) + 1;
    for (key, a) in x {
        budget.charge(compares * text_steps(key.len()))?;
        match y.get(key) {
            Some(b) => pending.push((json_node(a), json_node(b), false)),
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// The items of an array, whether JSON or a literal of the filter.
enum Items<'v> {
    Json(std::slice::Iter<'v, Value>),
    List(std::slice::Iter<'v, Val<'v>>),
}

impl<'v> Items<'v> {
    fn of(node: Node<'v>) -> Option<Items<'v>> {
        match node {
            Node::Json(items) => Some(Items::Json(items.iter())),
            Node::List(items) => Some(Items::List(items.iter())),
            _ => None,
        }
    }
}

impl<'v> Iterator for Items<'v> {
    type Item = Node<'v>;

    fn next(&mut self) -> Option<Node<'v>> {
        match self {
            Items::Json(items) => items.next().map(json_node),
            Items::List(items) => items.next().map(Val::node),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Items::Json(items) => items.size_hint(),
            Items::List(items) => items.size_hint(),
        }
    }
}

impl ExactSizeIterator for Items<'_> {}
