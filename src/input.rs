//! Bounds on untrusted input that hold at every door (HTTP bodies and URL
//! parameters, `filter_vars`, attribute paths, JSON-RPC messages, check
//! results, the state file): how deep a JSON value or an attribute path may
//! nest. Icinga's objects are shallow; no real client comes near the limit,
//! and a value within it is always stored, persisted and loaded back.
//!
//! Depth is measured without recursion, so a value that is deeper than any
//! stack could hold is measured, refused and dropped safely.

use serde_json::{Map, Value};

/// The deepest nesting accepted anywhere: of a JSON document that enters
/// the node, and of an attribute once stored (its path segments count).
pub const MAX_DEPTH: usize = 32;

/// How deep `value` nests: 0 for a scalar, 1 for a flat array or object, and
/// one more for each level inside. Linear in the size of the value; stops
/// as soon as it is past `MAX_DEPTH`.
pub fn depth(value: &Value) -> usize {
    depth_until(value, MAX_DEPTH)
}

/// [`depth`], measured until it is past `limit` instead: a JSON-RPC frame
/// carries values within [`MAX_DEPTH`] a few levels down.
pub fn depth_until(value: &Value, limit: usize) -> usize {
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
        if here > limit {
            return here;
        }
    }
    deepest
}

fn is_container(v: &Value) -> bool {
    v.is_array() || v.is_object()
}

/// Whether serde_json refused a document for nesting past its own limit
/// (128 levels): past [`MAX_DEPTH`] too, so the same refusal as ours.
pub fn is_too_deep(e: &serde_json::Error) -> bool {
    e.is_syntax() && e.to_string().starts_with("recursion limit exceeded")
}

/// Why input is refused: the text names the limit, for a 400 or a log line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A JSON value nests deeper than `limit`.
    #[error("{what} is nested deeper than the limit of {limit} levels")]
    TooDeep {
        /// What was measured (`the request body`, `attribute 'vars'`).
        what: String,
        /// The limit it is over.
        limit: usize,
    },
    /// An attribute path has more segments than [`MAX_DEPTH`].
    #[error("the path of attribute '{root}' has more than the limit of {MAX_DEPTH} segments")]
    PathTooLong {
        /// The attribute the path is in.
        root: String,
    },
    /// A value is larger than its limit.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was measured.
        what: String,
        /// Its size in bytes.
        size: usize,
        /// The limit it is over.
        limit: usize,
    },
}

/// `Ok` if `value` nests at most `limit` levels; `what` names it in the error.
pub fn check_depth(value: &Value, limit: usize, what: impl FnOnce() -> String) -> Result<(), InputError> {
    if depth_until(value, limit) > limit {
        return Err(InputError::TooDeep { what: what(), limit });
    }
    Ok(())
}

/// [`check_depth`] of `Value::Object(map)`, without building it.
pub fn check_object_depth(
    map: &Map<String, Value>,
    limit: usize,
    what: impl FnOnce() -> String,
) -> Result<(), InputError> {
    let deepest = map.values().map(|v| depth_until(v, limit)).max().unwrap_or(0);
    if 1 + deepest > limit {
        return Err(InputError::TooDeep { what: what(), limit });
    }
    Ok(())
}

/// `Ok` if setting `path` (`vars.a.b`) to `value` keeps the attribute it is
/// in within [`MAX_DEPTH`]: each segment after the first is one level of
/// dictionary above `value`, so `(segments - 1) + depth(value)` is the most
/// it can add. A path has at most [`MAX_DEPTH`] segments.
pub fn check_attribute(path: &str, value: &Value) -> Result<(), InputError> {
    let root = path.split('.').next().unwrap_or(path);
    let segments = path.split('.').take(MAX_DEPTH + 1).count();
    if segments > MAX_DEPTH {
        return Err(InputError::PathTooLong { root: root.to_string() });
    }
    if segments - 1 + depth(value) > MAX_DEPTH {
        return Err(InputError::TooDeep { what: format!("attribute '{root}'"), limit: MAX_DEPTH });
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
    fn an_attribute_path_counts_its_segments_as_levels() {
        let path = |segments: usize| vec!["vars"; segments].join(".");
        assert!(check_attribute(&path(MAX_DEPTH), &json!([1])).is_ok(), "31 dictionaries and a list");
        assert!(check_attribute("vars", &nested(MAX_DEPTH)).is_ok());
        let err = check_attribute(&path(MAX_DEPTH), &json!([[1]])).unwrap_err();
        assert_eq!(err.to_string(), "attribute 'vars' is nested deeper than the limit of 32 levels");
        let err = check_attribute(&path(MAX_DEPTH + 1), &json!(1)).unwrap_err();
        assert_eq!(err.to_string(), "the path of attribute 'vars' has more than the limit of 32 segments");
        assert!(check_attribute(&path(100_000), &json!(1)).is_err(), "a long path is refused, not walked");
    }

    #[test]
    fn serde_jsons_own_limit_reads_as_too_deep() {
        let deep = "[".repeat(200);
        let e = serde_json::from_str::<Value>(&deep).unwrap_err();
        assert!(is_too_deep(&e), "{e}");
        let e = serde_json::from_str::<Value>("[1,").unwrap_err();
        assert!(!is_too_deep(&e), "{e}");
    }

    #[test]
    fn limits_past_max_depth_are_measured_in_full() {
        let deep = json!({"a": nested(MAX_DEPTH + 2)});
        assert_eq!(depth(&deep), MAX_DEPTH + 1, "depth stops past MAX_DEPTH");
        assert_eq!(depth_until(&deep, MAX_DEPTH + 10), MAX_DEPTH + 3);
        let map = deep.as_object().unwrap();
        assert!(check_object_depth(map, MAX_DEPTH + 3, || "m".into()).is_ok());
        assert!(check_object_depth(map, MAX_DEPTH + 2, || "m".into()).is_err());
        assert!(check_object_depth(&Map::new(), 1, || "m".into()).is_ok());
        assert!(check_depth(&deep, MAX_DEPTH + 3, || "v".into()).is_ok());
        assert!(check_depth(&deep, MAX_DEPTH + 2, || "v".into()).is_err());
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
