//! Which objects a request is about, as Icinga's `FilterUtility::GetFilterTargets`
//! decides: the permission first, then `<type>=<name>` and `<plural>=<name>`
//! selectors, then `filter` (with `filter_vars`) or, with neither, every
//! object of the `type` parameter.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::filter::Filter;
use super::handlers::{Ctx, Step};
use super::params::{scalar_string, Params};
use super::response::ApiError;
use crate::env::Env;
use crate::store::{Object, ObjectType};

/// A parsed `filter` with its `filter_vars`.
pub struct FilterSpec {
    filter: Filter,
    vars: Map<String, Value>,
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

    /// Evaluates the filter with `filter_vars` and then `bindings` in scope
    /// (an object's own names win over a variable of the same name).
    pub fn matches(&self, bindings: &[(&str, &Value)]) -> Step<bool> {
        let mut scope = self.vars.clone();
        for (name, value) in bindings {
            scope.insert(name.to_string(), (*value).clone());
        }
        self.filter.matches(&scope).map_err(|e| bad_filter(&e))
    }
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
pub fn find<E: Env>(ctx: &Ctx<'_, E>, types: &[ObjectType], permission: &str) -> Step<Vec<Arc<Object>>> {
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
    let all = ctx.shared.store.list(otype);
    match filter {
        None => found.extend(all),
        Some(filter) => {
            let hosts = host_attrs(ctx, otype);
            for obj in all {
                if matches_object(&filter, &obj, &hosts)? {
                    found.push(obj);
                }
            }
        }
    }
    Ok(found)
}

/// Objects named by `<type>=<name>` and `<plural>=<name>`; an unknown name is 404.
fn selected<E: Env>(ctx: &Ctx<'_, E>, types: &[ObjectType]) -> Step<Vec<Arc<Object>>> {
    let store = &ctx.shared.store;
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

/// Hosts' attributes by name, for binding `host` when filtering services.
fn host_attrs<E: Env>(ctx: &Ctx<'_, E>, otype: ObjectType) -> BTreeMap<String, Value> {
    if otype != ObjectType::Service {
        return BTreeMap::new();
    }
    ctx.shared.store.list(ObjectType::Host).iter().map(|h| (h.name.clone(), attrs_value(h))).collect()
}

fn matches_object(filter: &FilterSpec, obj: &Object, hosts: &BTreeMap<String, Value>) -> Step<bool> {
    let attrs = attrs_value(obj);
    match obj.otype {
        ObjectType::Service => {
            let host = hosts.get(obj.host_name()).unwrap_or(&Value::Null);
            filter.matches(&[("host", host), ("service", &attrs), ("obj", &attrs)])
        }
        otype => filter.matches(&[(otype.lower(), &attrs), ("obj", &attrs)]),
    }
}
