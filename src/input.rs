//! Bounds on untrusted input that hold at every door (HTTP bodies and URL
//! parameters, `filter_vars`, attribute paths, JSON-RPC messages, check
//! results, the state file): how deep a JSON value or an attribute path may
//! nest. Icinga's objects are shallow; no real client comes near the limit,
//! and a value within it is always stored, persisted and loaded back.
//!
//! Depth is measured without recursion, so a value that is deeper than any
//! stack could hold is measured, refused and dropped safely.

use serde_json::Value;

/// The deepest nesting accepted anywhere: of a JSON document that enters
/// the node, and of an attribute once stored (its path segments count).
pub const MAX_DEPTH: usize = 32;

/// How deep `value` nests: 0 for a scalar, 1 for a flat array or object, and
/// one more for each level inside. Linear in the size of the value; stops
/// as soon as it is past `MAX_DEPTH`.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, above)) = stack.pop() {
        let here = above + 1;
        match v {
            Value::Array(items) => stack.extend(items.iter().filter(|c| is_container(c)).map(|c| (c, here))),
            Value::Object(map) => stack.extend(map.values().filter(|c| is_container(c)).map(|c| (c, here))),
            _ => continue,
        }
        deepest = deepest.max(here);
        if here > MAX_DEPTH {
            return here;
        }
    }
    deepest
}

fn is_container(v: &Value) -> bool {
    v.is_array() || v.is_object()
}

/// Why input is refused: the text names the limit, for a 400 or a log line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A JSON value nests deeper than [`MAX_DEPTH`].
    #[error("{what} is nested deeper than the limit of {MAX_DEPTH} levels")]
    TooDeep {
        /// What was measured (`the request body`, `attribute 'vars'`).
        what: String,
    },
}

/// `Ok` if `value` nests at most `limit` levels; `what` names it in the error.
pub fn check_depth(value: &Value, limit: usize, what: impl FnOnce() -> String) -> Result<(), InputError> {
    if depth(value) > limit {
        return Err(InputError::TooDeep { what: what() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!(1);
        for i in 0..levels {
            v = if i % 2 == 0 { json!([v]) } else { json!({ "a": v }) };
        }
        v
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&json!([])), 1);
        assert_eq!(depth(&json!({"a": {"b": [1, [2]]}})), 4);
        assert_eq!(depth(&nested(MAX_DEPTH)), MAX_DEPTH);
    }

    #[test]
    fn the_limit_is_inclusive_and_named() {
        assert!(check_depth(&nested(MAX_DEPTH), MAX_DEPTH, || "x".into()).is_ok());
        let err = check_depth(&nested(MAX_DEPTH + 1), MAX_DEPTH, || "the request body".into()).unwrap_err();
        assert_eq!(err.to_string(), "the request body is nested deeper than the limit of 32 levels");
    }

    #[test]
    fn a_value_too_deep_for_recursion_is_measured_without_it() {
        // Built and torn down level by level: serde_json's own Drop recurses.
        let mut v = json!(null);
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(depth(&v), MAX_DEPTH + 1);
        let mut cur = v;
        while let Value::Array(mut items) = cur {
            cur = items.pop().unwrap_or(Value::Null);
        }
    }
}
