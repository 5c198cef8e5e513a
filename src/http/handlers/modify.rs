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
use crate::input;
use crate::store::{Mutation, Object, StoreError};
use crate::work::Admission;

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
    let set: Vec<(String, Value)> =
        attrs.map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    check_attributes(set.iter().map(|(k, v)| (k, v)))?;
    Ok(ModifyRequest { set, restore: restore.unwrap_or_default() })
}

/// `400` naming the limit unless every attribute (`vars.x` paths included)
/// stays within the depth limit once set.
pub fn check_attributes<'a>(attrs: impl Iterator<Item = (&'a String, &'a Value)>) -> Result<(), ApiError> {
    for (key, value) in attrs {
        input::check_attribute(key, value).map_err(|e| ApiError::new(400, e.to_string()))?;
    }
    Ok(())
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
    let mut gate = Gate::enter(ctx, bug!(ctx.shared.config(), HttpHandlerWithoutGate)).await?;
    let results = gate.each(ctx, objects, |obj, work| modify_one(ctx, obj, &req, work)).await;
    let status = if bug!(ctx.shared.config(), ModifyAnswers200WhenSkipped) {
        200
    } else {
        overall_status(codes(&results))
    };
    Ok(gate.finish(Reply::results(status_code(status), results)))
}

fn modify_one<E: Env>(ctx: &Ctx<'_, E>, obj: Arc<Object>, req: &ModifyRequest, work: &Admission) -> Value {
    let (otype, name) = Object::release(obj);
    let m =
        Mutation::Modify { otype, name: name.clone(), set: req.set.clone(), restore: req.restore.clone() };
    let (code, status) = match ctx.shared.store().apply(m, ctx.origin(), ctx.now(), work) {
        Ok(_) => (200, "Attributes updated.".to_string()),
        Err(e @ StoreError::NotFound(_)) => (404, e.to_string()),
        Err(e @ StoreError::Sealed(_)) => (503, e.to_string()),
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

    #[test]
    fn a_path_deeper_than_the_limit_is_400_naming_it() {
        // Scenario: `{"attrs":{"vars.a.a…":1}}` with 125 segments, about 300 bytes.
        // Bug: it was stored; the state file written at Stop then nested past
        // serde_json's 128 levels, and the next start set it aside as corrupt.
        // Fix: a path has at most MAX_DEPTH segments and the attribute it makes
        // at most MAX_DEPTH levels; more is refused before the gate.
        let path = vec!["a"; 125].join(".");
        let err = parse_body(&format!(r#"{{"attrs":{{"vars.{path}":1}}}}"#)).unwrap_err();
        assert_eq!(
            (err.code, err.status.as_str()),
            (400, "the path of attribute 'vars' has more than the limit of 32 segments")
        );
        let deepest = vec!["a"; crate::input::MAX_DEPTH - 1].join(".");
        assert!(parse_body(&format!(r#"{{"attrs":{{"vars.{deepest}":{{"k":1}}}}}}"#)).is_ok());
        let err = parse_body(&format!(r#"{{"attrs":{{"vars.{deepest}":{{"k":[1]}}}}}}"#)).unwrap_err();
        assert_eq!(err.status, "attribute 'vars' is nested deeper than the limit of 32 levels");
    }

    mod paths {
        use std::time::{Duration, SystemTime};

        use proptest::prelude::*;
        use serde_json::{json, Map, Value};

        use super::parse;
        use crate::http::handlers::create;
        use crate::http::params::Params;
        use crate::input::{depth, MAX_DEPTH};
        use crate::store::{Mutation, ObjectType, Origin, Store, StoreSnapshot};

        fn segment() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => Just("vars".to_string()),
                4 => "[a-c]{1,2}",
                1 => Just(String::new()),
                1 => prop::sample::select(vec!["notes", "host_name", "groups", "__name", "state"]).prop_map(String::from),
                1 => "\\PC{0,4}",
            ]
        }

        /// Short paths of any segments, and long chains past the limit.
        fn path() -> impl Strategy<Value = String> {
            prop_oneof![
                prop::collection::vec(segment(), 1..6).prop_map(|s| s.join(".")),
                (1..80usize).prop_map(|n| std::iter::once("vars")
                    .chain(std::iter::repeat_n("a", n))
                    .collect::<Vec<_>>()
                    .join(".")),
            ]
        }

        /// A small tree wrapped in up to 40 more levels of lists or dictionaries.
        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(|f| json!(f)),
                "\\PC{0,6}".prop_map(Value::String),
            ];
            let tree = leaf.prop_recursive(4, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map("[a-c.]{0,3}", inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            });
            (tree, 0..40usize, any::<bool>()).prop_map(|(v, levels, lists)| {
                (0..levels).fold(v, |v, _| if lists { json!([v]) } else { json!({ "k": v }) })
            })
        }

        fn apply(store: &Store, m: Mutation) {
            // Refusals are expected; what must hold is checked on the store after.
            let work = crate::waitgroup::WaitGroup::new();
            let admission = crate::work::Admission::enter(&work).expect("an open group admits");
            let _ =
                store.apply(m, Origin::Local, SystemTime::UNIX_EPOCH + Duration::from_secs(1), &admission);
        }

        /// A host the store accepts unless `attrs` says otherwise: without a
        /// check command every create would be refused before its paths are set.
        fn host(name: &str, mut attrs: Map<String, Value>) -> Mutation {
            attrs.entry("check_command").or_insert_with(|| json!("dummy"));
            Mutation::Create { otype: ObjectType::Host, name: name.into(), attrs }
        }

        fn modify(set: Vec<(String, Value)>, restore: Vec<String>) -> Mutation {
            Mutation::Modify { otype: ObjectType::Host, name: "h".into(), set, restore }
        }

        proptest! {
            #[test]
            fn no_path_or_value_stores_an_attribute_past_the_limit(
                attrs in prop::collection::btree_map(path(), value(), 1..5),
                restore in prop::collection::vec(segment(), 0..2),
            ) {
                let store = Store::new(None);
                apply(&store, host("h", json!({"vars": {"os": "linux"}}).as_object().cloned().unwrap_or_default()));
                let attrs: Map<String, Value> = attrs.into_iter().collect();
                // Through the HTTP door: the body, then the handlers' parse.
                let body = serde_json::to_vec(&json!({"attrs": attrs, "restore_attrs": restore})).unwrap();
                if let Ok(params) = Params::from_request(&body, None) {
                    if let Ok(req) = parse(&params) {
                        apply(&store, modify(req.set, req.restore));
                    }
                    if let Ok(req) = create::parse(&params) {
                        apply(&store, host("h2", req.attrs));
                    }
                }
                // Straight at the store: its own checks hold without the handlers'.
                let set = attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                apply(&store, modify(set, restore));
                apply(&store, host("h3", attrs));
                let snapshot = store.snapshot();
                for obj in &snapshot.objects {
                    for (k, v) in &obj.attrs {
                        prop_assert!(depth(v) <= MAX_DEPTH, "{} {} is {} deep", obj.name, k, depth(v));
                    }
                }
                let bytes = serde_json::to_vec(&snapshot).unwrap();
                let back: StoreSnapshot = serde_json::from_slice(&bytes).unwrap();
                prop_assert_eq!(back, snapshot);
            }
        }
    }
}
