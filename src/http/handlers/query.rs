//! `GET /v1/objects/<plural>[/<name>]`: the targeted objects with their
//! attributes, joins and meta data. Never gated: it changes nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Map, Value};

use super::{answer, set_url_target, url_type, Ctx, Step};
use crate::env::Env;
use crate::http::params::Params;
use crate::http::response::{object_result, ApiError, QueryEntry, QueryResult, Reply};
use crate::http::targets::{self, attrs_value};
use crate::store::{Object, ObjectType, Store, CONFIG_ATTRS};

/// What a query asks to see, validated.
#[derive(Debug, Default, PartialEq)]
pub struct QueryRequest {
    /// Attributes to show (`None`: all).
    pub attrs: Option<Vec<String>>,
    /// Joins asked for (`host`, `host.name`).
    pub joins: Vec<String>,
    /// Every join with every attribute.
    pub all_joins: bool,
    /// Meta data `used_by`.
    pub used_by: bool,
    /// Meta data `location`.
    pub location: bool,
}

/// Reads `attrs`, `joins`, `all_joins` and `meta`.
pub fn parse(params: &Params) -> Result<QueryRequest, ApiError> {
    let list = |key: &str| {
        params.string_list(key).map_err(|_| {
            ApiError::new(
                400,
                format!("Invalid type for '{key}' attribute specified. Array type is required."),
            )
        })
    };
    let attrs = list("attrs")?;
    let joins = list("joins")?.unwrap_or_default();
    let mut req = QueryRequest { attrs, joins, all_joins: params.flag("all_joins"), ..Default::default() };
    for meta in list("meta")?.unwrap_or_default() {
        match meta.as_str() {
            "used_by" => req.used_by = true,
            "location" => req.location = true,
            _ => return Err(ApiError::new(400, format!("Invalid field specified for meta: {meta}"))),
        }
    }
    Ok(req)
}

/// Answers a query.
pub async fn handle<E: Env>(ctx: &mut Ctx<'_, E>, plural: &str, name: Option<&str>) -> Reply {
    answer(run(ctx, plural, name).await)
}

async fn run<E: Env>(ctx: &mut Ctx<'_, E>, plural: &str, name: Option<&str>) -> Step<Reply> {
    let otype = url_type(plural)?;
    let req = parse(&ctx.params)?;
    set_url_target(&mut ctx.params, otype, name);
    let ctx = &*ctx;
    let objects = targets::find(ctx, &[otype], &format!("objects/query/{}", otype.name())).await?;
    let results = objects.into_iter().map(|obj| entry(ctx, obj, &req)).collect();
    Ok(Reply::query(StatusCode::OK, results))
}

fn entry<E: Env>(ctx: &Ctx<'_, E>, object: Arc<Object>, req: &QueryRequest) -> QueryResult {
    let fail = |obj: &Object, status: String| {
        QueryResult::Failed(object_result(400, obj.otype.name(), &obj.name, status))
    };
    let attrs = match req.attrs.as_deref().map(|wanted| pick(&object, wanted)).transpose() {
        Ok(attrs) => attrs,
        Err(status) => return fail(&object, status),
    };
    let joins = match joins(ctx, &object, req) {
        Ok(joins) => joins,
        Err(status) => return fail(&object, status),
    };
    let mut meta = Map::new();
    if req.used_by {
        meta.insert("used_by".into(), used_by(ctx.shared.store(), &object));
    }
    if req.location {
        // Objects here are created at run time, never from a config file.
        meta.insert("location".into(), Value::Null);
    }
    QueryResult::Object(QueryEntry { object, attrs, joins, meta })
}

/// The chosen attributes; an unknown one is `Invalid field specified: <a>`.
fn select(obj: &Object, wanted: Option<&[String]>) -> Result<Value, String> {
    match wanted {
        Some(wanted) => pick(obj, wanted),
        None => Ok(attrs_value(obj)),
    }
}

fn pick(obj: &Object, wanted: &[String]) -> Result<Value, String> {
    let mut out = Map::new();
    for attr in wanted {
        match obj.attrs.get(attr) {
            Some(v) => out.insert(attr.clone(), v.clone()),
            None if CONFIG_ATTRS.contains(&attr.as_str()) => out.insert(attr.clone(), Value::Null),
            None => return Err(format!("Invalid field specified: {attr}")),
        };
    }
    Ok(Value::Object(out))
}

/// The objects an object can be joined with, by join name.
fn joinable(obj: &Object) -> Vec<(&'static str, ObjectType, String)> {
    let host = (("host"), ObjectType::Host, obj.host_name().to_string());
    match obj.otype {
        ObjectType::Host => vec![],
        ObjectType::Service => vec![host],
        ObjectType::Comment => {
            let service = obj.attr("service_name").as_str().unwrap_or("").to_string();
            let mut joins = vec![host];
            if !service.is_empty() {
                joins.push(("service", ObjectType::Service, service));
            }
            joins
        }
    }
}

fn joins<E: Env>(ctx: &Ctx<'_, E>, obj: &Object, req: &QueryRequest) -> Result<Value, String> {
    let asked: BTreeSet<&str> = req.joins.iter().map(|j| j.split('.').next().unwrap_or(j)).collect();
    let mut out = Map::new();
    for (join, otype, name) in joinable(obj) {
        if !req.all_joins && !asked.contains(join) {
            continue;
        }
        if !ctx.may(&format!("objects/query/{}", otype.name())) {
            continue;
        }
        let Some(joined) = ctx.shared.store().get(otype, &name) else { continue };
        let whole = req.all_joins || req.joins.iter().any(|j| j == join);
        let fields: Vec<String> = req
            .joins
            .iter()
            .filter_map(|j| j.strip_prefix(join)?.strip_prefix('.').map(str::to_string))
            .collect();
        out.insert(join.to_string(), select(&joined, (!whole).then_some(fields.as_slice()))?);
    }
    Ok(Value::Object(out))
}

/// Objects that refer to `obj`: a host's services and comments, a service's comments.
fn used_by(store: &Store, obj: &Object) -> Value {
    let refers = |o: &Object| match obj.otype {
        // A comment on one of the host's services is the service's, not the host's.
        ObjectType::Host => {
            o.name != obj.name && (o.otype == ObjectType::Service || o.attr("service_name") == "")
        }
        ObjectType::Service => true,
        ObjectType::Comment => false,
    };
    let users = store
        .children(obj.otype, &obj.name)
        .iter()
        .filter(|o| refers(o))
        .map(|o| json!({"name": o.name, "type": o.otype.name()}))
        .collect();
    Value::Array(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_query(q: &str) -> Result<QueryRequest, ApiError> {
        parse(&Params::from_request(b"", Some(q)).unwrap())
    }

    #[test]
    fn query_parameters_are_validated() {
        let req = parse_query("attrs=name&attrs=state&joins=host.name&meta=used_by").unwrap();
        assert_eq!(req.attrs, Some(vec!["name".to_string(), "state".to_string()]));
        assert_eq!(req.joins, vec!["host.name".to_string()]);
        assert!(req.used_by && !req.location && !req.all_joins);
        assert_eq!(parse_query("meta=nope").err().map(|r| r.code), Some(400));
        let body = Params::from_request(br#"{"attrs":{"a":1}}"#, None).unwrap();
        assert!(parse(&body).is_err());
    }

    #[test]
    fn selecting_an_unknown_attribute_is_an_error() {
        let obj = Object {
            otype: ObjectType::Host,
            name: "h".into(),
            attrs: [("name".to_string(), json!("h"))].into_iter().collect(),
        };
        assert_eq!(
            select(&obj, Some(&["name".into(), "notes".into()])),
            Ok(json!({"name": "h", "notes": null}))
        );
        assert_eq!(select(&obj, Some(&["bogus".into()])), Err("Invalid field specified: bogus".to_string()));
        assert_eq!(select(&obj, None), Ok(json!({"name": "h"})));
    }
}
