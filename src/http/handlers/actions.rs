//! `POST /v1/actions/<action>`: process-check-result, acknowledge-problem,
//! remove-acknowledgement, add-comment and remove-comment, one object at a
//! time under the gate, with Icinga's per-object results.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::{answer, Ctx, Step};
use crate::env::Env;
use crate::http::gate::{codes, overall_status, Gate};
use crate::http::params::{scalar_string, Params};
use crate::http::response::{code_result, status_code, ApiError, Reply};
use crate::http::targets::{self, no_objects};
use crate::probe::Probe;
use crate::store::{unix_seconds, CheckResult, Mutation, Object, ObjectType, StoreError};
use crate::work::Admission;

/// The actions this node has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `process-check-result`.
    ProcessCheckResult,
    /// `acknowledge-problem`.
    AcknowledgeProblem,
    /// `remove-acknowledgement`.
    RemoveAcknowledgement,
    /// `add-comment`.
    AddComment,
    /// `remove-comment`.
    RemoveComment,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 5] = [
        Action::ProcessCheckResult,
        Action::AcknowledgeProblem,
        Action::RemoveAcknowledgement,
        Action::AddComment,
        Action::RemoveComment,
    ];

    /// The action a URL names, exactly as Icinga spells it.
    pub fn parse(name: &str) -> Option<Action> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The name in URLs and permissions (`process-check-result`).
    pub fn name(self) -> &'static str {
        match self {
            Action::ProcessCheckResult => "process-check-result",
            Action::AcknowledgeProblem => "acknowledge-problem",
            Action::RemoveAcknowledgement => "remove-acknowledgement",
            Action::AddComment => "add-comment",
            Action::RemoveComment => "remove-comment",
        }
    }

    /// The types of object it targets.
    fn types(self) -> &'static [ObjectType] {
        const CHECKABLES: &[ObjectType] = &[ObjectType::Service, ObjectType::Host];
        match self {
            Action::RemoveComment => &[ObjectType::Service, ObjectType::Host, ObjectType::Comment],
            _ => CHECKABLES,
        }
    }
}

/// Answers an action request.
pub async fn handle<E: Env>(ctx: &Ctx<'_, E>, action: &str) -> Reply {
    answer(run(ctx, action).await)
}

async fn run<E: Env>(ctx: &Ctx<'_, E>, name: &str) -> Step<Reply> {
    let action =
        Action::parse(name).ok_or_else(|| ApiError::new(404, format!("Action '{name}' does not exist.")))?;
    let objects = targets::find(ctx, action.types(), &format!("actions/{}", action.name())).await?;
    if objects.is_empty() {
        return Err(no_objects());
    }
    tracing::debug!("Running action {}", action.name());
    let mut gate = Gate::enter(ctx, false).await?;
    let results = gate.each(ctx, objects, |obj, work| run_one(ctx, action, obj, work)).await;
    let status = overall_status(codes(&results));
    Ok(gate.finish(Reply::results(status_code(status), results)))
}

fn run_one<E: Env>(ctx: &Ctx<'_, E>, action: Action, obj: Arc<Object>, work: &Admission) -> Value {
    match action {
        Action::ProcessCheckResult => process_check_result(ctx, obj),
        Action::AcknowledgeProblem => acknowledge(ctx, obj, work),
        Action::RemoveAcknowledgement => remove_acknowledgement(ctx, obj, work),
        Action::AddComment => add_comment(ctx, obj, work),
        Action::RemoveComment => remove_comment(ctx, obj, work),
    }
}

/// A per-object failure: code and text.
type Failure = (u16, String);

fn failure(code: u16, text: impl Into<String>) -> Failure {
    (code, text.into())
}

fn apply<E: Env>(
    ctx: &Ctx<'_, E>,
    m: Mutation,
    work: &Admission,
) -> Result<crate::store::Applied, StoreError> {
    ctx.shared.store().apply(m, ctx.origin(), ctx.now(), work)
}

/// Reads a process-check-result request for `obj` as Icinga validates it.
pub fn parse_check_result(
    params: &Params,
    obj: &Object,
    node_name: &str,
    now: SystemTime,
) -> Result<CheckResult, Failure> {
    let name = &obj.name;
    if obj.attr("enable_passive_checks") == &json!(false) {
        return Err(failure(403, format!("Passive checks are disabled for object '{name}'.")));
    }
    let Some(exit) = params.last("exit_status") else {
        return Err(failure(400, "Parameter 'exit_status' is required."));
    };
    let max = if obj.otype == ObjectType::Host { 1 } else { 3 };
    let exit_status = integer(exit)
        .filter(|s| (0..=max).contains(s))
        .ok_or_else(|| failure(400, format!("Invalid 'exit_status' for {} {name}.", obj.otype.name())))?;
    let Some(output) = params.last("plugin_output") else {
        return Err(failure(400, "Parameter 'plugin_output' is required"));
    };
    let now = unix_seconds(now);
    let time = |key| params.last(key).and_then(number).unwrap_or(now);
    let cr = CheckResult {
        exit_status,
        output: scalar_string(output).unwrap_or_default(),
        performance_data: performance_data(params.get("performance_data")),
        check_source: params.last_string("check_source").unwrap_or_else(|| node_name.to_string()),
        command: params.get("check_command").cloned().unwrap_or(Value::Null),
        execution_start: time("execution_start"),
        execution_end: time("execution_end"),
        ttl: params.last("ttl").and_then(number).unwrap_or(0.0),
    };
    cr.check_bounds("check_command").map_err(|e| failure(400, e.to_string()))?;
    Ok(cr)
}

/// A number, or a string holding one (query parameters are strings).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// An integral number within i64, however it was written.
fn integer(v: &Value) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let f = number(v)?;
    (f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0).then_some(f as i64)
}

/// Performance data as a list, or a plugin's space-separated string; none
/// when absent (or of another type), which Icinga stores as null.
fn performance_data(v: Option<&Value>) -> Option<Vec<String>> {
    match v {
        Some(Value::Array(items)) => Some(items.iter().filter_map(scalar_string).collect()),
        Some(Value::String(s)) => Some(s.split_whitespace().map(str::to_string).collect()),
        _ => None,
    }
}

fn process_check_result<E: Env>(ctx: &Ctx<'_, E>, obj: Arc<Object>) -> Value {
    let cr = match parse_check_result(&ctx.params, &obj, &ctx.shared.config().node_name, ctx.now()) {
        Ok(cr) => cr,
        Err((code, text)) => return code_result(code, text),
    };
    let (otype, name) = Object::release(obj);
    // Checkable::ProcessCheckResult takes the work group again as its producer:
    // a result that arrives after Join began is discarded, not applied.
    let Some(producer) = ctx.shared.admit_work() else {
        ctx.shared
            .env()
            .probe(|| Probe::GateRefused { work: format!("{} check result {name}", ctx.work_label()) });
        let text =
            format!("Could not process check result for object '{name}' because the object is inactive.");
        return code_result(503, text);
    };
    let m = Mutation::CheckResult { otype, name: name.clone(), cr: cr.clone() };
    match apply(ctx, m, &producer) {
        Ok(_) => {
            crate::jsonrpc::relay_check_result(ctx.shared, otype, &name, &cr);
            code_result(200, format!("Successfully processed check result for object '{name}'."))
        }
        Err(StoreError::NotFound(_)) => {
            code_result(404, "Cannot process passive check result for non-existent object.")
        }
        Err(e @ StoreError::PassiveDisabled(_)) => code_result(403, e.to_string()),
        Err(e @ StoreError::Outdated(_)) => code_result(409, e.to_string()),
        Err(e @ StoreError::Sealed(_)) => code_result(503, e.to_string()),
        Err(e) => code_result(400, e.to_string()),
    }
}

/// Reads an acknowledge-problem request for `obj` as Icinga validates it.
pub fn parse_acknowledgement(params: &Params, obj: &Object, now: SystemTime) -> Result<Mutation, Failure> {
    let (author, comment) = match (params.last_string("author"), params.last_string("comment")) {
        (Some(a), Some(c)) => (a, c),
        _ => return Err(failure(400, "Acknowledgements require author and comment.")),
    };
    let name = &obj.name;
    let expiry = match params.last("expiry") {
        None => 0.0,
        Some(v) => match number(v) {
            Some(t) if t > unix_seconds(now) => t,
            _ => {
                let text =
                    format!("Acknowledgement 'expiry' timestamp must be in the future for object {name}");
                return Err(failure(409, text));
            }
        },
    };
    let kind = obj.otype.name();
    if obj.attr("state").as_i64().unwrap_or(0) == 0 {
        let state = if obj.otype == ObjectType::Host { "UP" } else { "OK" };
        return Err(failure(409, format!("{kind} {name} is {state}.")));
    }
    if obj.attr("acknowledgement").as_i64().unwrap_or(0) != 0 {
        return Err(failure(409, format!("{kind} {name} is already acknowledged.")));
    }
    Ok(Mutation::Acknowledge {
        otype: obj.otype,
        name: name.clone(),
        author,
        comment,
        sticky: params.flag("sticky"),
        expiry,
    })
}

fn acknowledge<E: Env>(ctx: &Ctx<'_, E>, obj: Arc<Object>, work: &Admission) -> Value {
    let m = match parse_acknowledgement(&ctx.params, &obj, ctx.now()) {
        Ok(m) => m,
        Err((code, text)) => return code_result(code, text),
    };
    let (_, name) = Object::release(obj);
    match apply(ctx, m, work) {
        Ok(_) => code_result(200, format!("Successfully acknowledged problem for object '{name}'.")),
        Err(e) => store_failure(e),
    }
}

fn remove_acknowledgement<E: Env>(ctx: &Ctx<'_, E>, obj: Arc<Object>, work: &Admission) -> Value {
    let (otype, name) = Object::release(obj);
    match apply(ctx, Mutation::RemoveAcknowledgement { otype, name: name.clone() }, work) {
        Ok(_) => code_result(200, format!("Successfully removed acknowledgement for object '{name}'.")),
        Err(e) => store_failure(e),
    }
}

fn add_comment<E: Env>(ctx: &Ctx<'_, E>, obj: Arc<Object>, work: &Admission) -> Value {
    let (author, text) = match (ctx.params.last_string("author"), ctx.params.last_string("comment")) {
        (Some(a), Some(c)) => (a, c),
        _ => return code_result(400, "Comments require author and comment."),
    };
    let (otype, name) = Object::release(obj);
    let m = Mutation::AddComment { otype, name: name.clone(), author, text };
    match apply(ctx, m, work) {
        Ok(applied) => {
            let comment = applied.comment.unwrap_or_default();
            let text = format!("Successfully added comment '{comment}' for object '{name}'.");
            json!({"code": 200, "name": comment, "status": text})
        }
        Err(e) => store_failure(e),
    }
}

fn remove_comment<E: Env>(ctx: &Ctx<'_, E>, obj: Arc<Object>, work: &Admission) -> Value {
    if obj.otype == ObjectType::Comment {
        let (_, name) = Object::release(obj);
        return match apply(ctx, Mutation::RemoveComment { name: name.clone() }, work) {
            Ok(_) => code_result(200, format!("Successfully removed comment '{name}'.")),
            Err(StoreError::NotFound(_)) => code_result(404, "Cannot remove non-existent comment object."),
            Err(e) => store_failure(e),
        };
    }
    // A host's children include the comments on its services: those stay.
    let own = |c: &Object| {
        c.otype == ObjectType::Comment
            && (obj.otype == ObjectType::Service || c.attr("service_name").as_str().unwrap_or("").is_empty())
    };
    for comment in ctx.shared.store().children(obj.otype, &obj.name).iter().filter(|c| own(c)) {
        // A comment removed meanwhile by someone else is no failure here.
        let _ = apply(ctx, Mutation::RemoveComment { name: comment.name.clone() }, work);
    }
    code_result(200, format!("Successfully removed all comments for object '{}'.", obj.name))
}

fn store_failure(e: StoreError) -> Value {
    let code = match e {
        StoreError::NotFound(_) => 404,
        StoreError::PassiveDisabled(_) => 403,
        StoreError::Outdated(_) | StoreError::Invalid(_) | StoreError::Exists(_) => 409,
        StoreError::Sealed(_) => 503,
    };
    code_result(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::MAX_DEPTH;
    use crate::store::MAX_CHECK_RESULT_BYTES;
    use std::time::Duration;

    fn checkable(otype: ObjectType, attrs: Value) -> Object {
        let attrs = attrs.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Object { otype, name: "web1".into(), attrs }
    }

    fn params(body: &str) -> Params {
        Params::from_request(body.as_bytes(), None).unwrap()
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000)
    }

    #[test]
    fn check_results_need_exit_status_and_output() {
        let host = checkable(ObjectType::Host, json!({}));
        let err = |body| parse_check_result(&params(body), &host, "n", now()).unwrap_err();
        assert_eq!(err(r#"{"plugin_output":"x"}"#), (400, "Parameter 'exit_status' is required.".into()));
        assert_eq!(err(r#"{"exit_status":0}"#), (400, "Parameter 'plugin_output' is required".into()));
        assert_eq!(
            err(r#"{"exit_status":2,"plugin_output":"x"}"#),
            (400, "Invalid 'exit_status' for Host web1.".into())
        );
        assert_eq!(err(r#"{"exit_status":"x","plugin_output":"x"}"#).0, 400);
        assert_eq!(err(r#"{"exit_status":1e300,"plugin_output":"x"}"#).0, 400);
        assert_eq!(err(r#"{"exit_status":99999999999999999999999,"plugin_output":"x"}"#).0, 400);
    }

    #[test]
    fn service_check_results_take_zero_to_three_and_defaults() {
        let svc = checkable(ObjectType::Service, json!({}));
        let body = r#"{"exit_status":"3","plugin_output":"UNKNOWN","performance_data":"a=1 b=2"}"#;
        let cr = parse_check_result(&params(body), &svc, "node", now()).unwrap();
        assert_eq!(cr.exit_status, 3);
        assert_eq!(cr.performance_data, Some(vec!["a=1".into(), "b=2".into()]));
        assert_eq!(
            (cr.execution_start, cr.execution_end, cr.check_source.as_str()),
            (1000.0, 1000.0, "node")
        );
        let four = r#"{"exit_status":4,"plugin_output":"x"}"#;
        assert_eq!(
            parse_check_result(&params(four), &svc, "n", now()).unwrap_err(),
            (400, "Invalid 'exit_status' for Service web1.".into())
        );
    }

    #[test]
    fn a_check_command_too_deep_or_output_too_large_is_400_naming_the_limit() {
        let svc = checkable(ObjectType::Service, json!({}));
        let nested = |levels| (0..levels).fold(json!(1), |v, _| json!([v]));
        // Set directly: a body with a command this deep is refused as a whole first.
        let mut p = params(r#"{"exit_status":0,"plugin_output":"x"}"#);
        p.set("check_command", nested(MAX_DEPTH - 1));
        assert!(parse_check_result(&p, &svc, "n", now()).is_ok());
        p.set("check_command", nested(MAX_DEPTH));
        let err = parse_check_result(&p, &svc, "n", now()).unwrap_err();
        assert_eq!(err, (400, "'check_command' is nested deeper than the limit of 31 levels".into()));
        // Check source and performance data (one separator each) count along with the output.
        let body = |output: &str, source: &str| {
            let perf = r#"["a=1","b=22"]"#;
            format!(
                r#"{{"exit_status":0,"plugin_output":"{output}","check_source":"{source}","performance_data":{perf}}}"#
            )
        };
        let output = "x".repeat(MAX_CHECK_RESULT_BYTES - 10);
        assert!(parse_check_result(&params(&body(&output, "n")), &svc, "n", now()).is_ok());
        let (code, text) = parse_check_result(&params(&body(&output, "nn")), &svc, "n", now()).unwrap_err();
        let size = MAX_CHECK_RESULT_BYTES + 1;
        let named = format!("the check result's text (output, performance data, check source and command) is {size} bytes, over the limit of {MAX_CHECK_RESULT_BYTES} bytes");
        assert_eq!((code, text), (400, named));
    }

    #[test]
    fn passive_checks_disabled_is_403_first() {
        let host = checkable(ObjectType::Host, json!({"enable_passive_checks": false}));
        let e = parse_check_result(&params("{}"), &host, "n", now()).unwrap_err();
        assert_eq!(e, (403, "Passive checks are disabled for object 'web1'.".into()));
    }

    #[test]
    fn acknowledgements_are_validated_as_icinga_does() {
        let up = checkable(ObjectType::Host, json!({"state": 0}));
        let down = checkable(ObjectType::Host, json!({"state": 1}));
        let acked = checkable(ObjectType::Service, json!({"state": 2, "acknowledgement": 1}));
        let ok = r#"{"author":"a","comment":"c"}"#;
        assert_eq!(parse_acknowledgement(&params("{}"), &down, now()).unwrap_err().0, 400);
        assert_eq!(
            parse_acknowledgement(&params(ok), &up, now()).unwrap_err(),
            (409, "Host web1 is UP.".into())
        );
        assert_eq!(
            parse_acknowledgement(&params(ok), &acked, now()).unwrap_err(),
            (409, "Service web1 is already acknowledged.".into())
        );
        let past = r#"{"author":"a","comment":"c","expiry":10}"#;
        assert_eq!(parse_acknowledgement(&params(past), &down, now()).unwrap_err().0, 409);
        assert!(matches!(parse_acknowledgement(&params(ok), &down, now()), Ok(Mutation::Acknowledge { .. })));
    }
}
