//! TEMPORARY interface shim until the `filter` branch is merged. Not committed.

use serde_json::{Map, Value};

/// A parsed filter.
#[derive(Debug)]
pub struct Filter(String);

/// Why a filter failed.
#[derive(Debug)]
pub struct FilterError(String);

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Filter {
    /// Parses.
    pub fn parse(s: &str) -> Result<Filter, FilterError> {
        if s.contains("function") {
            return Err(FilterError("unsupported construct 'function'".into()));
        }
        Ok(Filter(s.to_string()))
    }
    /// Matches `a.b=="x"` only.
    pub fn matches(&self, scope: &Map<String, Value>) -> Result<bool, FilterError> {
        let (lhs, rhs) = self.0.split_once("==").ok_or_else(|| FilterError("shim".into()))?;
        let mut cur = Value::Object(scope.clone());
        for part in lhs.trim().split('.') {
            cur = cur.get(part).cloned().unwrap_or(Value::Null);
        }
        Ok(cur == Value::String(rhs.trim().trim_matches('"').to_string()))
    }
}
