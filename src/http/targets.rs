//! Which objects a request is about, as Icinga's `FilterUtility::GetFilterTargets`
//! decides: the permission first, then `<type>=<name>` and `<plural>=<name>`
//! selectors, then `filter` (with `filter_vars`) or, with neither, every
//! object of the `type` parameter.
//!
//! A filter runs over the objects under one budget per request
//! (`filter_budget`), borrowing their attributes. Every
//! [`PAUSE_STEPS`](super::filter::budget::PAUSE_STEPS) steps it
//! yields to the runtime, so a long filter never starves other tasks; at such
//! a pause, a request whose connection Stop has begun to close gives up with
//! `503 Shutting down.`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::filter::{Binding, Evaluator, Filter, FilterError, Scope};
use super::handlers::{Ctx, Step};
use super::params::{scalar_string, Params};
use super::response::ApiError;
use crate::env::{Env, Point};
use crate::node::Shared;
use crate::store::{Object, ObjectType};

/// What `host` is bound to for a service whose host does not exist.
static NO_HOST: Value = Value::Null;

/// A parsed `filter` with its `filter_vars`.
pub struct FilterSpec {
    filter: Filter,
    vars: Map<String, Value>,
}

/// Why an evaluation ended without a result.
#[derive(Debug)]
pub enum Halt {
    /// The filter failed, or ran out of budget.
    Filter(FilterError),
    /// Stop began while the filter paused.
    Stopping,
}

impl From<Halt> for ApiError {
    fn from(halt: Halt) -> ApiError {
        match halt {
            Halt::Filter(e) => bad_filter(&e),
            Halt::Stopping => ApiError::new(503, "Shutting down."),
        }
    }
}

impl FilterSpec {
    /// The request's filter, if it has one. A filter that does not parse, or
    /// `filter_vars` that are not a dictionary, is a 400 naming the problem.
    pub fn from_params(params: &Params) -> Step<Option<FilterSpec>> {
        if !params.contains("filter") {
            return Ok(None);
        }
        let text = params.last_string("filter").ok_or_else(|| {
            ApiError::new(400, "Invalid type for 'filter' specified. String type is required.")
        })?;
        let filter = Filter::parse(&text).map_err(|e| bad_filter(&e))?;
        let vars = match params.get("filter_vars") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(vars)) => vars.clone(),
            Some(_) => {
                return Err(ApiError::new(
                    400,
                    "Invalid type for 'filter_vars' specified. Dictionary type is required.",
                ))
            }
        };
        Ok(Some(FilterSpec { filter, vars }))
    }

    /// Evaluates the filter with `filter_vars` and then `names` in scope (an
    /// object's own names win over a variable of the same name), pausing
    /// whenever the evaluator asks to.
    pub async fn matches<E: Env>(
        &self,
        shared: &Shared<E>,
        eval: &mut Evaluator,
        names: &[(&str, Binding<'_>)],
    ) -> Result<bool, Halt> {
        let scope = Scope::new(names, &self.vars);
        let mut run = self.filter.start();
        loop {
            if let Some(matched) = run.resume(&scope, eval).map_err(Halt::Filter)? {
                return Ok(matched);
            }
            pause(shared, eval).await?;
        }
    }
}

/// Lets the runtime run other tasks; afterwards, Stop ends the evaluation.
async fn pause<E: Env>(shared: &Shared<E>, eval: &mut Evaluator) -> Result<(), Halt> {
    eval.budget.paused();
    tokio::task::yield_now().await;
    shared.env().point(Point::HttpFilterPause).await;
    if shared.http_stop().is_raised() {
        return Err(Halt::Stopping);
    }
    Ok(())
}

fn bad_filter(e: &impl std::fmt::Display) -> ApiError {
    ApiError::new(400, format!("Invalid filter: {e}"))
}

/// `404 No objects found.`
pub fn no_objects() -> ApiError {
    ApiError::new(404, "No objects found.")
}

/// An object's attributes as one JSON dictionary.
pub fn attrs_value(obj: &Object) -> Value {
    Value::Object(obj.attrs.clone())
}

/// The objects of `types` a request targets, after checking `permission`.
pub async fn find<E: Env>(
    ctx: &Ctx<'_, E>,
    types: &[ObjectType],
    permission: &str,
) -> Step<Vec<Arc<Object>>> {
    ctx.require(permission)?;
    let mut found = selected(ctx, types)?;
    let filter = FilterSpec::from_params(&ctx.params)?;
    if filter.is_none() && !found.is_empty() {
        return Ok(found);
    }
    let otype = ctx
        .params
        .last_string("type")
        .and_then(|t| ObjectType::from_name(&t))
        .filter(|t| types.contains(t))
        .ok_or_else(no_objects)?;
    let all = ctx.shared.store().list(otype);
    match filter {
        None => found.extend(all),
        Some(filter) => found.extend(filtered(ctx.shared, &filter, otype, all).await?),
    }
    Ok(found)
}

/// Objects named by `<type>=<name>` and `<plural>=<name>`; an unknown name is 404.
fn selected<E: Env>(ctx: &Ctx<'_, E>, types: &[ObjectType]) -> Step<Vec<Arc<Object>>> {
    let store = &ctx.shared.store();
    let get = |otype, name: &str| store.get(otype, name).ok_or_else(no_objects);
    let mut found = vec![];
    for &otype in types {
        if let Some(value) = ctx.params.last(otype.lower()) {
            let name = scalar_string(value).ok_or_else(no_objects)?;
            found.push(get(otype, &name)?);
        }
        let names = ctx.params.string_list(otype.plural()).map_err(|_| no_objects())?;
        for name in names.unwrap_or_default() {
            found.push(get(otype, &name)?);
        }
    }
    Ok(found)
}

/// The objects of `all` (all of type `otype`) that the filter matches, under one budget.
async fn filtered<E: Env>(
    shared: &Shared<E>,
    filter: &FilterSpec,
    otype: ObjectType,
    all: Vec<Arc<Object>>,
) -> Result<Vec<Arc<Object>>, Halt> {
    let host_list = if otype == ObjectType::Service { shared.store().list(ObjectType::Host) } else { vec![] };
    let hosts: BTreeMap<&str, &Map<String, Value>> =
        host_list.iter().map(|h| (h.name.as_str(), &h.attrs)).collect();
    let mut eval = Evaluator::new(shared.config().limits.filter_budget);
    let mut found = vec![];
    for obj in all {
        let matched = filter.matches(shared, &mut eval, &bindings(&obj, &hosts)).await?;
        if matched {
            found.push(obj);
        }
    }
    Ok(found)
}

/// The names an object binds: its type's (`host`) and `obj`; a service also
/// binds its host's attributes as `host` (null if the host is gone).
fn bindings<'a>(
    obj: &'a Object,
    hosts: &BTreeMap<&str, &'a Map<String, Value>>,
) -> Vec<(&'static str, Binding<'a>)> {
    let attrs = Binding::Attrs(&obj.attrs);
    match obj.otype {
        ObjectType::Service => {
            let host = hosts.get(obj.host_name()).map_or(Binding::Value(&NO_HOST), |h| Binding::Attrs(h));
            vec![("host", host), ("service", attrs), ("obj", attrs)]
        }
        otype => vec![(otype.lower(), attrs), ("obj", attrs)],
    }
}
