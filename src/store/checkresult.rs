//! Check results: what a passive result carries and how it changes a checkable.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::{check_depth, InputError, MAX_DEPTH};

/// The most bytes of plugin output, performance data (each entry and one
/// separator, as in its text form) and check source one check result may
/// carry together. A result the API accepts is relayed to
/// every endpoint, whose frames are limited to 16 MiB: even escaped six
/// times over (`\u0001`), 1 MiB stays under that, so no peer refuses it and
/// no replay log repeats it forever.
pub const MAX_CHECK_RESULT_BYTES: usize = 1024 * 1024;

/// A check result as the API and the cluster carry it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The plugin's exit status: host 0-1, service 0-3.
    pub exit_status: i64,
    /// The plugin's output.
    pub output: String,
    /// Performance data, one entry per label; `None` when the sender gave
    /// none, which Icinga answers as `null`, not as an empty list.
    #[serde(default)]
    pub performance_data: Option<Vec<String>>,
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

    /// `Ok` if the result fits the node: its command nests at most
    /// `MAX_DEPTH - 1` levels (so that `last_check_result`, one level above,
    /// stays within [`MAX_DEPTH`]) and its text within
    /// [`MAX_CHECK_RESULT_BYTES`]. `command` names the field in the error.
    pub fn check_bounds(&self, command: &str) -> Result<(), InputError> {
        check_depth(&self.command, MAX_DEPTH - 1, || format!("'{command}'"))?;
        let size = self.output.len()
            + self.performance_data.iter().flatten().map(|p| p.len() + 1).sum::<usize>()
            + self.check_source.len()
            + encoded_len(&self.command);
        if size > MAX_CHECK_RESULT_BYTES {
            return Err(InputError::TooLarge {
                what: "the check result's text (output, performance data, check source and command)".into(),
                size,
                limit: MAX_CHECK_RESULT_BYTES,
            });
        }
        Ok(())
    }

    /// The `last_check_result` attribute value. Every check result makes
    /// one, so it is built in one pass from entries already in key order
    /// (a bulk build, not one insert per key).
    pub fn to_attr(&self, is_host: bool, previous_hard_state: i64) -> Value {
        let entries: [(&str, Value); 17] = [
            ("active", false.into()),
            ("check_source", self.check_source.as_str().into()),
            ("command", self.command.clone()),
            ("execution_end", self.execution_end.into()),
            ("execution_start", self.execution_start.into()),
            ("exit_status", self.exit_status.into()),
            ("output", self.output.as_str().into()),
            ("performance_data", perfdata_attr(self.performance_data.as_deref())),
            ("previous_hard_state", previous_hard_state.into()),
            ("schedule_end", self.execution_end.into()),
            ("schedule_start", self.execution_start.into()),
            ("scheduling_source", self.check_source.as_str().into()),
            ("state", self.state(is_host).into()),
            ("ttl", self.ttl.into()),
            ("type", "CheckResult".into()),
            ("vars_after", Value::Null),
            ("vars_before", Value::Null),
        ];
        Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

/// Performance data as the API answers it: a list of strings, or null.
fn perfdata_attr(perfdata: Option<&[String]>) -> Value {
    match perfdata {
        Some(list) => list.iter().map(|p| Value::from(p.as_str())).collect(),
        None => Value::Null,
    }
}

/// The length of `v` as JSON, without writing it anywhere; 0 for null,
/// which stands for no command at all.
fn encoded_len(v: &Value) -> usize {
    if v.is_null() {
        return 0;
    }
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(output: &str, command: Value) -> CheckResult {
        CheckResult {
            exit_status: 0,
            output: output.into(),
            performance_data: None,
            check_source: String::new(),
            command,
            execution_start: 0.0,
            execution_end: 0.0,
            ttl: 0.0,
        }
    }

    #[test]
    fn a_large_command_counts_towards_the_size_bound() {
        // Scenario: an admin posts a small output with a huge check_command.
        // Bug: only the text fields were counted, so the result was accepted
        // and relayed past every endpoint's frame limit, again and again.
        // Fix: the command's JSON length counts too.
        let huge = Value::from(vec![Value::from("x".repeat(1024)); 1100]);
        let err = result("ok", huge).check_bounds("check_command").unwrap_err();
        assert!(err.to_string().contains("command"), "{err}");
        let half = "o".repeat(MAX_CHECK_RESULT_BYTES / 2);
        // The command as JSON: its text and two quotes.
        let fits = Value::from("c".repeat(MAX_CHECK_RESULT_BYTES / 2 - 2));
        assert!(result(&half, fits).check_bounds("check_command").is_ok(), "exactly at the bound");
        let over = Value::from("c".repeat(MAX_CHECK_RESULT_BYTES / 2 - 1));
        assert!(result(&half, over).check_bounds("check_command").is_err(), "one byte past it");
    }
}
