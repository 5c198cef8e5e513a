//! `DELETE /v1/objects/<plural>[/<name>]`: deletes every targeted object,
//! one at a time under the gate; `cascade` takes a host's services along.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{answer, url_objects, Ctx, Step};
use crate::env::Env;
use crate::http::gate::{codes, overall_status, Gate};
use crate::http::response::{status_code, Reply};
use crate::store::{Mutation, Object, StoreError};
use crate::work::Admission;

/// Answers a delete request.
pub async fn handle<E: Env>(ctx: &mut Ctx<'_, E>, plural: &str, name: Option<&str>) -> Reply {
    answer(run(ctx, plural, name).await)
}

async fn run<E: Env>(ctx: &mut Ctx<'_, E>, plural: &str, name: Option<&str>) -> Step<Reply> {
    let objects = url_objects(ctx, plural, name, "delete").await?;
    let ctx = &*ctx;
    let cascade = ctx.params.flag("cascade");
    let mut gate = Gate::enter(ctx, false).await?;
    let results = gate.each(ctx, objects, |obj, work| delete_one(ctx, obj, cascade, work)).await;
    let status = overall_status(codes(&results));
    Ok(gate.finish(Reply::results(status_code(status), results)))
}

fn delete_one<E: Env>(ctx: &Ctx<'_, E>, obj: Arc<Object>, cascade: bool, work: &Admission) -> Value {
    let (otype, name) = Object::release(obj);
    let m = Mutation::Delete { otype, name: name.clone(), cascade };
    let (code, errors, status) = match ctx.shared.store().apply(m, ctx.origin(), ctx.now(), work) {
        Ok(_) => (200, vec![], "Object was deleted."),
        Err(e @ StoreError::Sealed(_)) => (503, vec![e.to_string()], "Action skipped: Shutting down."),
        Err(e) => (500, vec![e.to_string()], "Object could not be deleted."),
    };
    json!({"code": code, "errors": errors, "name": name, "status": status, "type": otype.name()})
}
