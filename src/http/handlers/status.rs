//! `GET /v1/status[/<Name>]`: the status functions of Icinga that this node
//! has: `ApiListener`, `CIB` and `IcingaApplication`.

use hyper::StatusCode;
use serde_json::{json, Value};

use super::{answer, Ctx, Step};
use crate::env::Env;
use crate::http::filter::{Binding, Evaluator};
use crate::http::response::{ApiError, Reply};
use crate::http::targets::FilterSpec;
use crate::node::Shared;
use crate::store::{unix_seconds, ObjectType};

/// The status functions, in Icinga's (sorted) order.
pub const NAMES: [&str; 3] = ["ApiListener", "CIB", "IcingaApplication"];

/// Answers `GET /v1/status[/<name>]`.
pub async fn handle<E: Env>(ctx: &Ctx<'_, E>, name: Option<&str>) -> Reply {
    answer(run(ctx, name).await)
}

async fn run<E: Env>(ctx: &Ctx<'_, E>, name: Option<&str>) -> Step<Reply> {
    ctx.require("status/query")?;
    let filter = FilterSpec::from_params(&ctx.params)?;
    let name = name.map(str::to_string).or_else(|| ctx.params.last_string("status"));
    let names: Vec<&str> = match name.as_deref() {
        Some(n) => vec![NAMES.into_iter().find(|&k| k == n).ok_or_else(no_objects)?],
        None => NAMES.to_vec(),
    };
    let mut eval = Evaluator::new(ctx.shared.config().limits.filter_budget);
    let mut results = vec![];
    for name in names {
        let entry = status_entry(ctx, name);
        if let Some(filter) = &filter {
            let names = [("status", Binding::Value(&entry)), ("obj", Binding::Value(&entry))];
            if !filter.matches(ctx.shared, &mut eval, &names).await? {
                continue;
            }
        }
        results.push(entry);
    }
    Ok(Reply::results(StatusCode::OK, results))
}

fn no_objects() -> ApiError {
    ApiError::new(404, "No objects found.")
}

fn status_entry<E: Env>(ctx: &Ctx<'_, E>, name: &str) -> Value {
    let (status, perfdata) = match name {
        "ApiListener" => api_listener(ctx),
        "CIB" => cib(ctx),
        _ => (icinga_application(ctx), vec![]),
    };
    json!({ "name": name, "status": status, "perfdata": perfdata })
}

fn icinga_application<E: Env>(ctx: &Ctx<'_, E>) -> Value {
    let shared = ctx.shared;
    json!({
        "icingaapplication": {
            "app": {
                "enable_event_handlers": true,
                "enable_flapping": true,
                "enable_host_checks": true,
                "enable_notifications": true,
                "enable_perfdata": true,
                "enable_service_checks": true,
                "environment": "",
                "node_name": shared.config().node_name,
                "pid": shared.env().pid(),
                "program_start": unix_seconds(shared.started()),
                "version": env!("CARGO_PKG_VERSION"),
            }
        }
    })
}

fn api_listener<E: Env>(ctx: &Ctx<'_, E>) -> (Value, Vec<Value>) {
    let shared = ctx.shared;
    let (http, endpoints, anonymous) = shared.connection_counts();
    let configured = shared.config().endpoints.len();
    let perfdata = vec![
        perf("api_num_conn_endpoints", endpoints),
        perf("api_num_endpoints", configured),
        perf("api_num_http_clients", http),
        perf("api_num_json_rpc_anonymous_clients", anonymous),
        perf("api_num_not_conn_endpoints", configured.saturating_sub(endpoints)),
        perf("api_num_refused_connections", shared.refused_connections() as usize),
    ];
    (api_listener_status(shared), perfdata)
}

/// The `status` object of `/v1/status/ApiListener`.
fn api_listener_status<E: Env>(shared: &Shared<E>) -> Value {
    let (http, endpoints, anonymous) = shared.connection_counts();
    let (up, down, _) = shared.cluster().status();
    json!({
        "api": {
            "identity": shared.config().node_name,
            "num_endpoints": up.len() + down.len(),
            "num_conn_endpoints": up.len(),
            "num_not_conn_endpoints": down.len(),
            "conn_endpoints": up,
            "not_conn_endpoints": down,
            "http": { "clients": http },
            "json_rpc": { "anonymous_clients": anonymous, "clients": endpoints },
            "refused_connections": shared.refused_connections(),
        }
    })
}

fn cib<E: Env>(ctx: &Ctx<'_, E>) -> (Value, Vec<Value>) {
    let store = ctx.shared.store();
    let mut counts: Vec<(String, usize)> = vec![];
    for (otype, states) in [
        (ObjectType::Host, &["up", "down"][..]),
        (ObjectType::Service, &["ok", "warning", "critical", "unknown"][..]),
    ] {
        let objects = store.list(otype);
        let plural = otype.plural();
        for (i, state) in states.iter().enumerate() {
            let n = objects.iter().filter(|o| o.attr("state").as_u64() == Some(i as u64)).count();
            counts.push((format!("num_{plural}_{state}"), n));
        }
        let acked = objects.iter().filter(|o| o.attr("acknowledgement").as_u64().unwrap_or(0) != 0).count();
        counts.push((format!("num_{plural}_acknowledged"), acked));
    }
    counts.sort();
    let status: serde_json::Map<String, Value> = counts.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let perfdata = counts.iter().map(|(k, v)| perf(k, *v)).collect();
    (Value::Object(status), perfdata)
}

/// A perfdata entry as Icinga serializes a `PerfdataValue`.
fn perf(label: &str, value: usize) -> Value {
    json!({
        "counter": false, "crit": null, "label": label, "max": null, "min": null,
        "type": "PerfdataValue", "unit": "", "value": value, "warn": null,
    })
}
