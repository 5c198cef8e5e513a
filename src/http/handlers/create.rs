//! `PUT /v1/objects/<plural>/<name>`: creates one object under the gate.

use hyper::StatusCode;
use serde_json::{json, Map, Value};

use super::modify::check_attributes;
use super::{answer, url_type, Ctx, Step};
use crate::env::Env;
use crate::http::gate::Gate;
use crate::http::params::Params;
use crate::http::response::{ApiError, Reply};
use crate::store::{Mutation, ObjectType};
use crate::work::Admission;

/// What a create request asks for, validated.
#[derive(Debug, PartialEq)]
pub struct CreateRequest {
    /// The configuration attributes; a `vars.x` key sets a path, as Icinga
    /// writes `attrs` into the object's config.
    pub attrs: Map<String, Value>,
    /// Templates to import (none exist on this node).
    pub templates: Vec<String>,
    /// Answer 200 even if nothing was created.
    pub ignore_on_error: bool,
}

/// Reads `attrs`, `templates` and `ignore_on_error`.
pub fn parse(params: &Params) -> Result<CreateRequest, ApiError> {
    let mut attrs = match params.get("attrs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(attrs)) => attrs.clone(),
        Some(_) => {
            return Err(ApiError::new(
                400,
                "Invalid type for 'attrs' attribute specified. Dictionary type is required.",
            ))
        }
    };
    check_attributes(attrs.iter())?;
    // Icinga makes `groups` unique (and sorted, as its set does).
    if let Some(Value::Array(groups)) = attrs.get_mut("groups") {
        groups.sort_by_key(|g| g.to_string());
        groups.dedup();
    }
    let templates = params.string_list("templates").map_err(|_| {
        ApiError::new(400, "Invalid type for 'templates' attribute specified. Array type is required.")
    })?;
    Ok(CreateRequest {
        attrs,
        templates: templates.unwrap_or_default(),
        ignore_on_error: params.flag("ignore_on_error"),
    })
}

/// Answers a create request.
pub async fn handle<E: Env>(ctx: &Ctx<'_, E>, plural: &str, name: &str) -> Reply {
    answer(run(ctx, plural, name).await)
}

async fn run<E: Env>(ctx: &Ctx<'_, E>, plural: &str, name: &str) -> Step<Reply> {
    let otype = url_type(plural)?;
    ctx.require(&format!("objects/create/{}", otype.name()))?;
    let req = parse(&ctx.params)?;
    let gate = Gate::enter(ctx, false).await?;
    let Some(work) = gate.admission() else { return Err(ApiError::new(503, "Shutting down.")) };
    let outcome = create(ctx, otype, name, req, work);
    Ok(gate.finish(outcome))
}

fn create<E: Env>(
    ctx: &Ctx<'_, E>,
    otype: ObjectType,
    name: &str,
    req: CreateRequest,
    work: &Admission,
) -> Reply {
    let result = match req.templates.first() {
        Some(t) => Err(format!("Import references unknown template: '{t}'")),
        None => {
            let m = Mutation::Create { otype, name: name.to_string(), attrs: req.attrs };
            ctx.shared.store().apply(m, ctx.origin(), ctx.now(), work).map(|_| ()).map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => Reply::results(StatusCode::OK, vec![json!({"code": 200, "status": "Object was created"})]),
        Err(_) if req.ignore_on_error => Reply::results(
            StatusCode::OK,
            vec![
                json!({"code": 200, "status": "Object was not created but 'ignore_on_error' was set to true"}),
            ],
        ),
        Err(error) => Reply::results(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![json!({"code": 500, "errors": [error], "status": "Object could not be created."})],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> Params {
        Params::from_request(body.as_bytes(), None).unwrap()
    }

    #[test]
    fn create_parameters_are_validated() {
        let req = parse(&params(
            r#"{"attrs":{"address":"1.2.3.4","groups":["b","a","b"]},"ignore_on_error":true}"#,
        ))
        .unwrap();
        assert_eq!(req.attrs.get("groups"), Some(&json!(["a", "b"])));
        assert!(req.ignore_on_error);
        assert!(req.templates.is_empty());
        assert!(parse(&params(r#"{"attrs":[1]}"#)).is_err());
        assert!(parse(&params(r#"{"templates":{"a":1}}"#)).is_err());
        assert_eq!(parse(&params(r#"{}"#)).unwrap().attrs, Map::new());
    }

    #[test]
    fn a_create_path_deeper_than_the_limit_is_400_naming_it() {
        let path = vec!["vars"; crate::input::MAX_DEPTH].join(".");
        assert!(parse(&params(&format!(r#"{{"attrs":{{"{path}":[1]}}}}"#))).is_ok());
        let err = parse(&params(&format!(r#"{{"attrs":{{"{path}":[[1]]}}}}"#))).unwrap_err();
        assert_eq!(
            (err.code, err.status.as_str()),
            (400, "attribute 'vars' is nested deeper than the limit of 32 levels")
        );
    }
}
