//! `POST /v1/objects/<plural>[/<name>]`: sets and restores attributes of
//! every targeted object, one object at a time under the gate.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{answer, url_objects, Ctx, Step};
use crate::bug;
use crate::env::Env;
use crate::http::gate::{codes, overall_status, Gate};
use crate::http::params::Params;
use crate::http::response::{object_result, status_code, ApiError, Reply};
use crate::store::{Mutation, Object, StoreError};

const OVERRIDE_HINT: &str =
    "Or is this a POST query and you missed adding a 'X-HTTP-Method-Override: GET' header?";

/// What a modify request asks for, validated.
#[derive(Debug, PartialEq)]
pub struct ModifyRequest {
    /// Attributes to set, `vars.x` paths included, in key order (as Icinga's
    /// sorted Dictionary applies them).
    pub set: Vec<(String, Value)>,
    /// Attributes to restore to their defaults.
    pub restore: Vec<String>,
}

/// Reads `attrs` and `restore_attrs`; at least one is required.
pub fn parse(params: &Params) -> Result<ModifyRequest, ApiError> {
    let attrs: Option<&Map<String, Value>> = match params.get("attrs") {
        None | Some(Value::Null) => None,
        Some(Value::Object(attrs)) => Some(attrs),
        Some(_) => {
            let text = format!(
                "Invalid type for 'attrs' attribute specified. Dictionary type is required.{OVERRIDE_HINT}"
            );
            return Err(ApiError::new(400, text));
        }
    };
    let restore = match params.get("restore_attrs") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(restore_type_error)?,
        ),
        Some(_) => return Err(restore_type_error()),
    };
    if attrs.is_none() && restore.is_none() {
        let text = format!("Missing both 'attrs' and 'restore_attrs'. {OVERRIDE_HINT}");
        return Err(ApiError::new(400, text));
    }
    let set = attrs.map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    Ok(ModifyRequest { set, restore: restore.unwrap_or_default() })
}

fn restore_type_error() -> ApiError {
    ApiError::new(400, "Invalid type for 'restore_attrs' attribute specified. Array type is required.")
}

/// Answers a modify request.
pub async fn handle<E: Env>(ctx: &mut Ctx<'_, E>, plural: &str, name: Option<&str>) -> Reply {
    answer(run(ctx, plural, name).await)
}

async fn run<E: Env>(ctx: &mut Ctx<'_, E>, plural: &str, name: Option<&str>) -> Step<Reply> {
    let objects = url_objects(ctx, plural, name, "modify").await?;
    let ctx = &*ctx;
    let req = parse(&ctx.params)?;
    let mut gate = Gate::enter(ctx, bug!(ctx.shared.config, HttpHandlerWithoutGate)).await?;
    let results = gate.each(ctx, objects, |obj| modify_one(ctx, obj, &req)).await;
    let status = if bug!(ctx.shared.config, ModifyAnswers200WhenSkipped) {
        200
    } else {
        overall_status(codes(&results))
    };
    Ok(gate.finish(Reply::results(status_code(status), results)))
}

fn modify_one<E: Env>(ctx: &Ctx<'_, E>, obj: Arc<Object>, req: &ModifyRequest) -> Value {
    let (otype, name) = Object::release(obj);
    let m =
        Mutation::Modify { otype, name: name.clone(), set: req.set.clone(), restore: req.restore.clone() };
    let (code, status) = match ctx.shared.store.apply(m, ctx.origin(), ctx.now()) {
        Ok(_) => (200, "Attributes updated.".to_string()),
        Err(e @ StoreError::NotFound(_)) => (404, e.to_string()),
        Err(e) => (500, e.to_string()),
    };
    object_result(code, otype.name(), &name, status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_body(body: &str) -> Result<ModifyRequest, ApiError> {
        parse(&Params::from_request(body.as_bytes(), None).unwrap())
    }

    #[test]
    fn attrs_apply_in_key_order_as_icingas_dictionary_and_keep_vars_paths() {
        // Icinga's Dictionary is sorted by key, so `vars` is set before `vars.os`.
        let body =
            r#"{"attrs":{"vars.os":"linux","vars":{"a":1},"address":"::1"},"restore_attrs":["notes"]}"#;
        let req = parse_body(body).unwrap();
        let expected = vec![
            ("address".into(), json!("::1")),
            ("vars".into(), json!({"a": 1})),
            ("vars.os".into(), json!("linux")),
        ];
        assert_eq!(req.set, expected);
        assert_eq!(req.restore, vec!["notes".to_string()]);
    }

    #[test]
    fn modify_needs_a_dictionary_or_a_list() {
        for body in [r#"{}"#, r#"{"attrs":"x"}"#, r#"{"restore_attrs":"x"}"#, r#"{"restore_attrs":[1]}"#] {
            let reply = parse_body(body).expect_err(body);
            assert_eq!(reply.code, 400, "{body}");
        }
        assert!(parse_body(r#"{"restore_attrs":[]}"#).is_ok());
    }
}
