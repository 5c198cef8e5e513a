//! Check results: what a passive result carries and how it changes a checkable.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A check result as the API and the cluster carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The plugin's exit status: host 0-1, service 0-3.
    pub exit_status: i64,
    /// The plugin's output.
    pub output: String,
    /// Performance data, one entry per label.
    #[serde(default)]
    pub performance_data: Vec<String>,
    /// Where the check ran.
    #[serde(default)]
    pub check_source: String,
    /// The check command, if the sender named one.
    #[serde(default)]
    pub command: Value,
    /// When the check started, seconds since the epoch.
    pub execution_start: f64,
    /// When the check ended, seconds since the epoch.
    pub execution_end: f64,
    /// How long the result stays fresh, in seconds (0: not set).
    #[serde(default)]
    pub ttl: f64,
}

/// Icinga's state for a host's exit status: 0 and 1 are UP, the rest DOWN.
pub fn host_state(exit_status: i64) -> i64 {
    if exit_status <= 1 {
        0
    } else {
        1
    }
}

impl CheckResult {
    /// The state this result puts its object in.
    pub fn state(&self, is_host: bool) -> i64 {
        if is_host {
            // The API only admits 0 (UP) and 1 (DOWN) for hosts and means them literally.
            i64::from(self.exit_status != 0)
        } else {
            self.exit_status.clamp(0, 3)
        }
    }

    /// The `last_check_result` attribute value. Built entry by entry: every
    /// check result makes one, and `json!` would serialize each field first.
    pub fn to_attr(&self, is_host: bool, previous_hard_state: i64) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| m.insert(k.to_string(), v);
        put("type", "CheckResult".into());
        put("active", false.into());
        put("check_source", self.check_source.as_str().into());
        put("command", self.command.clone());
        put("execution_start", self.execution_start.into());
        put("execution_end", self.execution_end.into());
        put("exit_status", self.exit_status.into());
        put("output", self.output.as_str().into());
        put("performance_data", self.performance_data.iter().map(|p| Value::from(p.as_str())).collect());
        put("previous_hard_state", previous_hard_state.into());
        put("schedule_start", self.execution_start.into());
        put("schedule_end", self.execution_end.into());
        put("scheduling_source", self.check_source.as_str().into());
        put("state", self.state(is_host).into());
        put("ttl", self.ttl.into());
        put("vars_after", Value::Null);
        put("vars_before", Value::Null);
        Value::Object(m)
    }
}
