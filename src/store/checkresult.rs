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

/// A host's state (UP 0, DOWN 1) for a check result's state, as Icinga's
/// `Host::CalculateState`: OK and WARNING are UP, the rest DOWN.
pub fn host_state(state: i64) -> i64 {
    if state <= 1 {
        0
    } else {
        1
    }
}

/// The check result state that stands for a host's state: UP is OK, DOWN
/// CRITICAL, as process-check-result makes them.
pub fn host_result_state(host_state: i64) -> i64 {
    if host_state == 0 {
        0
    } else {
        2
    }
}

impl CheckResult {
    /// The result's state as Icinga's check result carries it (a service
    /// state, also for hosts): for a host, exit status 0 is OK and 1
    /// CRITICAL (process-check-result admits no other); a service's 0-3
    /// are OK, WARNING, CRITICAL and UNKNOWN.
    pub fn state(&self, is_host: bool) -> i64 {
        if is_host {
            host_result_state(i64::from(self.exit_status != 0))
        } else {
            self.exit_status.clamp(0, 3)
        }
    }

    /// The state this result puts its object in: a host's UP or DOWN, a
    /// service's own state.
    pub fn object_state(&self, is_host: bool) -> i64 {
        if is_host {
            host_state(self.state(true))
        } else {
            self.state(false)
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

    /// The `last_check_result` attribute value, with what processing it
    /// found (`previous_hard_state`, `vars_before`, `vars_after`). Every
    /// check result makes one, so it is built in one pass from entries
    /// already in key order (a bulk build, not one insert per key).
    pub fn to_attr(&self, is_host: bool, processed: Processed) -> Value {
        let entries: [(&str, Value); 17] = [
            ("active", false.into()),
            ("check_source", self.check_source.as_str().into()),
            ("command", self.command.clone()),
            ("execution_end", self.execution_end.into()),
            ("execution_start", self.execution_start.into()),
            ("exit_status", self.exit_status.into()),
            ("output", self.output.as_str().into()),
            ("performance_data", perfdata_attr(self.performance_data.as_deref())),
            ("previous_hard_state", processed.previous_hard_state.into()),
            ("schedule_end", self.execution_end.into()),
            ("schedule_start", self.execution_start.into()),
            ("scheduling_source", self.check_source.as_str().into()),
            ("state", self.state(is_host).into()),
            ("ttl", self.ttl.into()),
            ("type", "CheckResult".into()),
            ("vars_after", processed.vars_after),
            ("vars_before", processed.vars_before),
        ];
        Value::Object(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

/// What processing a result records in it, as Icinga's
/// `ProcessCheckResult` does.
#[derive(Clone, Debug, PartialEq)]
pub struct Processed {
    /// The HARD state before the current one, as a check result state (99:
    /// none yet).
    pub previous_hard_state: i64,
    /// The previous result's `vars_after` (null for the first result).
    pub vars_before: Value,
    /// `{"attempt","reachable","state","state_type"}` after this result.
    pub vars_after: Value,
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
    fn a_down_host_has_a_critical_result_as_in_icinga() {
        // Scenario: process-check-result with exit_status 1 for a host.
        // Bug: the stored and relayed result said state 1, where Icinga's
        // result for a DOWN host says CRITICAL (2).
        // Fix: a result's state is a service state, the host's own is UP or DOWN.
        let mut cr = result("down", Value::Null);
        cr.exit_status = 1;
        assert_eq!((cr.state(true), cr.object_state(true)), (2, 1));
        assert_eq!((cr.state(false), cr.object_state(false)), (1, 1), "a service's WARNING is itself");
        cr.exit_status = 0;
        assert_eq!((cr.state(true), cr.object_state(true)), (0, 0));
        assert_eq!((0..4).map(host_state).collect::<Vec<_>>(), vec![0, 0, 1, 1], "OK and WARNING are UP");
        assert_eq!((host_result_state(0), host_result_state(1)), (0, 2));
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
