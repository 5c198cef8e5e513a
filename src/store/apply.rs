//! The mutation logic behind [`Store::apply`](super::Store::apply). Each
//! function validates first and changes nothing on error.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::input;

use super::checkresult::{host_result_state, Processed};
use super::transition::{self, Checked, StateType, Transition};
use super::{
    event_body, index, split_service_name, CheckResult, Event, Inner, Mutation, Object, ObjectType,
    StoreError, CONFIG_ATTRS,
};

/// What one applied mutation did.
#[derive(Default)]
pub(super) struct Outcome {
    /// Every object removed (a delete with cascade removes several).
    pub(super) removed: Vec<(ObjectType, String)>,
    /// The name of a comment that was created.
    pub(super) comment: Option<String>,
    /// The events to publish.
    pub(super) events: Vec<Event>,
}

impl Outcome {
    fn events(events: Vec<Event>) -> Result<Outcome, StoreError> {
        Ok(Outcome { events, ..Outcome::default() })
    }
}

pub(super) fn apply(inner: &mut Inner, m: &Mutation, time: f64) -> Result<Outcome, StoreError> {
    match m {
        Mutation::Create { otype, name, attrs } => create(inner, *otype, name, attrs, time),
        Mutation::Modify { otype, name, set, restore } => modify(inner, *otype, name, set, restore, time),
        Mutation::Delete { otype, name, cascade } => delete(inner, *otype, name, *cascade, time),
        Mutation::CheckResult { otype, name, cr } => check_result(inner, *otype, name, cr, time),
        Mutation::Acknowledge { otype, name, author, comment, sticky, expiry } => {
            acknowledge(inner, *otype, name, author, comment, *sticky, *expiry, time)
        }
        Mutation::RemoveAcknowledgement { otype, name } => remove_ack(inner, *otype, name, time),
        Mutation::AddComment { otype, name, author, text } => {
            add_comment(inner, *otype, name, author, text, time)
        }
        Mutation::RemoveComment { name } => remove_comment(inner, name, time),
    }
}

/// The events one mutation publishes, built only if someone listens.
struct Events {
    listening: bool,
    list: Vec<Event>,
}

impl Events {
    fn new(inner: &Inner) -> Self {
        Events { listening: inner.listening, list: vec![] }
    }

    /// Adds a `kind` event about `obj`; `extra` is built only for a listener.
    fn add(&mut self, kind: &'static str, obj: &Object, time: f64, extra: impl FnOnce() -> Value) {
        if self.listening {
            let body = event_body(kind, obj, time, extra());
            self.list.push(Event { kind, otype: obj.otype, name: obj.name.clone(), body });
        }
    }
}

fn key(otype: ObjectType, name: &str) -> (ObjectType, String) {
    (otype, name.to_string())
}

fn get_mut<'a>(inner: &'a mut Inner, otype: ObjectType, name: &str) -> Result<&'a mut Object, StoreError> {
    let obj =
        inner.objects.get_mut(&key(otype, name)).ok_or_else(|| StoreError::NotFound(name.to_string()))?;
    Ok(Arc::make_mut(obj))
}

/// Runtime attributes every new checkable starts with. A new checkable is
/// OK: Icinga's raw state of an unchecked one is UNKNOWN (which reads DOWN
/// for a host), and quiesce keeps it OK so that a new host is not a
/// problem to acknowledge. Its state type is SOFT, as in Icinga, until the
/// first result.
fn defaults(otype: ObjectType, name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("__name".into(), json!(name));
    m.insert("name".into(), json!(name));
    m.insert("type".into(), json!(otype.name()));
    m.insert("display_name".into(), json!(name));
    if otype.is_checkable() {
        for (k, v) in [
            ("acknowledgement", json!(0)),
            ("acknowledgement_expiry", json!(0)),
            ("address", json!("")),
            ("check_attempt", json!(1)),
            ("check_command", json!("")),
            ("enable_active_checks", json!(true)),
            ("enable_passive_checks", json!(true)),
            ("last_check", json!(-1)),
            ("last_check_result", Value::Null),
            ("last_hard_state", json!(0)),
            ("last_hard_state_change", json!(0)),
            ("last_state", json!(0)),
            ("last_state_change", json!(0)),
            ("last_state_type", json!(0)),
            ("max_check_attempts", json!(3)),
            ("state", json!(0)),
            ("state_type", json!(0)),
            ("vars", Value::Null),
        ] {
            m.insert(k.into(), v);
        }
    }
    m
}

/// `key` may be set to `value`: a configuration attribute (or a path in
/// one), and within the depth limit once set.
fn check_settable(key: &str, value: &Value) -> Result<(), StoreError> {
    check_config_attr(key)?;
    input::check_attribute(key, value).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The top-level attribute a path (`vars.os`) sets.
fn root(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

fn check_config_attr(key: &str) -> Result<(), StoreError> {
    if CONFIG_ATTRS.contains(&root(key)) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "Attribute '{key}' could not be set: it does not exist or is read-only."
        )))
    }
}

fn create(
    inner: &mut Inner,
    otype: ObjectType,
    name: &str,
    attrs: &Map<String, Value>,
    time: f64,
) -> Result<Outcome, StoreError> {
    if otype == ObjectType::Comment {
        return Err(StoreError::Invalid("Comments are created with the 'add-comment' action.".into()));
    }
    if inner.objects.contains_key(&key(otype, name)) {
        return Err(StoreError::Exists(name.to_string()));
    }
    let mut all = defaults(otype, name);
    let mut host = None;
    if otype == ObjectType::Service {
        let (host_name, short) = split_service_name(name).ok_or_else(|| {
            StoreError::Invalid(format!("Service name '{name}' is not of the form 'host!service'."))
        })?;
        host = Some(host_name);
        all.insert("host_name".into(), json!(host_name));
        all.insert("display_name".into(), json!(short));
        all.insert("name".into(), json!(short));
    } else if name.is_empty() || name.contains('!') {
        return Err(StoreError::Invalid(format!("Host name '{name}' is not valid.")));
    }
    // In key order, as Icinga writes `attrs` into the object's config: `vars`
    // is set before `vars.os` adds to it.
    for (k, v) in attrs {
        check_settable(k, v)?;
        if k == "host_name" && otype == ObjectType::Service && all.get("host_name") != Some(v) {
            return Err(StoreError::Invalid("Attribute 'host_name' must match the service's name.".into()));
        }
        set_path(&mut all, k, v.clone())?;
    }
    // Icinga validates the finished object, Checkable's attributes before Service's.
    if let Err(invalid) = validate(otype, &all, |_| true) {
        return Err(StoreError::Invalid(invalid.text(otype, name)));
    }
    as_integer_attempts(&mut all);
    if let Some(host) = host.filter(|h| !inner.objects.contains_key(&key(ObjectType::Host, h))) {
        let invalid =
            Invalid { attr: "host_name", message: format!("Object '{host}' of type 'Host' does not exist.") };
        return Err(StoreError::Invalid(invalid.text(otype, name)));
    }
    let obj = Object { otype, name: name.to_string(), attrs: all };
    let mut events = Events::new(inner);
    events.add("ObjectCreated", &obj, time, || json!({"object_type": otype.name(), "object_name": name}));
    inner.children.link(&obj);
    inner.objects.insert(key(otype, name), Arc::new(obj));
    Outcome::events(events.list)
}

/// An attribute Icinga's validation of an object refuses, and why.
#[derive(Debug, PartialEq)]
struct Invalid {
    attr: &'static str,
    message: String,
}

impl Invalid {
    /// Icinga's text for it (`DiagnosticInformation` of its `ValidationError`).
    /// Icinga follows it with the location in the config file it generated
    /// for the object; quiesce writes none, so there is no location to name.
    fn text(&self, otype: ObjectType, name: &str) -> String {
        let (kind, attr, message) = (otype.name(), self.attr, &self.message);
        format!(
            "Error: Validation failed for object '{name}' of type '{kind}'; Attribute '{attr}': {message}"
        )
    }
}

/// Attributes whose values [`validate`] checks: a modify that touches one
/// works on a copy, so that a refused value changes nothing.
const VALIDATED: [&str; 2] = ["check_command", "max_check_attempts"];

/// What Icinga requires of a checkable, in the order it checks: a
/// `check_command` (`[required]` in checkable.ti; any name passes, as no
/// CheckCommand objects exist here) and `max_check_attempts` above 0
/// (Checkable::ValidateMaxCheckAttempts).
/// Only attributes for which `checked` is true are checked: a modify, as
/// Icinga's, validates what it changes.
fn validate(
    otype: ObjectType,
    attrs: &Map<String, Value>,
    checked: impl Fn(&str) -> bool,
) -> Result<(), Invalid> {
    if !otype.is_checkable() {
        return Ok(());
    }
    let empty = match attrs.get("check_command") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    };
    if empty && checked("check_command") {
        let message = "Attribute must not be empty.".to_string();
        return Err(Invalid { attr: "check_command", message });
    }
    if !checked("max_check_attempts") {
        return Ok(());
    }
    match attrs.get("max_check_attempts").map(attempts) {
        None | Some(Some(1..)) => Ok(()),
        Some(Some(_)) => {
            Err(Invalid { attr: "max_check_attempts", message: "Value must be greater than 0.".into() })
        }
        Some(None) => Err(Invalid {
            attr: "max_check_attempts",
            message: "Value must be a number greater than 0.".into(),
        }),
    }
}

/// Stores `max_check_attempts` as the integer Icinga keeps of what was set
/// (`"5"` and `5.5` are 5).
fn as_integer_attempts(attrs: &mut Map<String, Value>) {
    if let Some(n) = attrs.get("max_check_attempts").and_then(attempts) {
        attrs.insert("max_check_attempts".into(), json!(n));
    }
}

/// `max_check_attempts` as the integer Icinga converts it to: a number
/// (a fraction truncated), a string holding one, or null (0); `None` for
/// anything else.
pub(super) fn attempts(v: &Value) -> Option<i64> {
    let truncate = |f: f64| f.is_finite().then(|| f.trunc().clamp(i64::MIN as f64, i64::MAX as f64) as i64);
    match v {
        Value::Null => Some(0),
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(truncate)),
        Value::String(s) => s.trim().parse::<f64>().ok().and_then(truncate),
        _ => None,
    }
}

/// Sets `path` (`vars.os`) inside `attrs`, creating dictionaries on the way.
fn set_path(attrs: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), StoreError> {
    let mut parts = path.split('.');
    let root = parts.next().unwrap_or(path);
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        attrs.insert(root.to_string(), value);
        return Ok(());
    }
    let mut cur = attrs.entry(root.to_string()).or_insert(Value::Null);
    for part in &rest[..rest.len() - 1] {
        if cur.is_null() {
            *cur = json!({});
        }
        let map = cur.as_object_mut().ok_or_else(|| not_a_dict(path))?;
        cur = map.entry(part.to_string()).or_insert(Value::Null);
    }
    if cur.is_null() {
        *cur = json!({});
    }
    let map = cur.as_object_mut().ok_or_else(|| not_a_dict(path))?;
    map.insert(rest[rest.len() - 1].to_string(), value);
    Ok(())
}

/// Whether every path sets a different top-level attribute.
fn distinct_roots(set: &[(String, Value)]) -> bool {
    let roots: std::collections::BTreeSet<&str> =
        set.iter().map(|(k, _)| k.split('.').next().unwrap_or("")).collect();
    roots.len() == set.len()
}

/// Whether [`set_path`] would succeed: every existing parent on the way is
/// a dictionary (or null, which becomes one).
fn settable(attrs: &Map<String, Value>, path: &str) -> Result<(), StoreError> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = attrs;
    for part in &parts[..parts.len() - 1] {
        match cur.get(*part) {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::Object(map)) => cur = map,
            Some(_) => return Err(not_a_dict(path)),
        }
    }
    Ok(())
}

fn not_a_dict(path: &str) -> StoreError {
    StoreError::Invalid(format!("Attribute '{path}' could not be set: a parent of it is not a dictionary."))
}

fn modify(
    inner: &mut Inner,
    otype: ObjectType,
    name: &str,
    set: &[(String, Value)],
    restore: &[String],
    time: f64,
) -> Result<Outcome, StoreError> {
    for (k, v) in set {
        check_settable(k, v)?;
        if k == "host_name" {
            return Err(StoreError::Invalid(
                "Attribute 'host_name' could not be set: it cannot be changed.".into(),
            ));
        }
    }
    for k in restore {
        check_config_attr(k)?;
    }
    let mut events = Events::new(inner);
    let before = inner.objects.get(&key(otype, name)).map(|o| index::parents(o)).unwrap_or_default();
    let obj = get_mut(inner, otype, name)?;
    // A value validation may refuse is set on the copy below, as a restore is.
    let validated = set.iter().any(|(k, _)| VALIDATED.contains(&root(k)));
    if restore.is_empty() && distinct_roots(set) && !validated {
        // Only setting can fail, on a parent that is not a dictionary, and
        // with every path in its own attribute that is checked first: the
        // object changes in place or not at all.
        for (k, _) in set {
            settable(&obj.attrs, k)?;
        }
        for (k, v) in set {
            set_path(&mut obj.attrs, k, v.clone())?;
        }
    } else {
        // One change could alter what a later path passes through: work on a copy.
        let mut attrs = obj.attrs.clone();
        let base = defaults(otype, name);
        for k in restore {
            match base.get(k.as_str()) {
                Some(v) => attrs.insert(k.clone(), v.clone()),
                None => attrs.remove(k.as_str()),
            };
        }
        for (k, v) in set {
            set_path(&mut attrs, k, v.clone())?;
        }
        let touched =
            |attr: &str| set.iter().any(|(k, _)| root(k) == attr) || restore.iter().any(|k| k == attr);
        if let Err(invalid) = validate(otype, &attrs, touched) {
            // Icinga names the attribute it was setting (or restoring) when validation refused.
            let (verb, key) = match set.iter().find(|(k, _)| root(k) == invalid.attr) {
                Some((k, _)) => ("set", k.as_str()),
                None => ("restored", invalid.attr),
            };
            let text = invalid.text(otype, name);
            return Err(StoreError::Invalid(format!("Attribute '{key}' could not be {verb}: {text}")));
        }
        as_integer_attempts(&mut attrs);
        obj.attrs = attrs;
    }
    events.add("ObjectModified", obj, time, || json!({"object_type": otype.name(), "object_name": name}));
    // Restoring `host_name` removes it, and with it a child's link to its host.
    let after = index::parents(obj);
    inner.children.relink(&key(otype, name), &before, &after);
    Outcome::events(events.list)
}

fn delete(
    inner: &mut Inner,
    otype: ObjectType,
    name: &str,
    cascade: bool,
    time: f64,
) -> Result<Outcome, StoreError> {
    if !inner.objects.contains_key(&key(otype, name)) {
        return Err(StoreError::NotFound(name.to_string()));
    }
    // A host takes every service and comment that names it; a service its comments.
    let dependents: Vec<(ObjectType, String)> = match otype {
        ObjectType::Comment => vec![],
        _ => inner
            .children
            .of(otype, name)
            .filter(|(t, _)| otype == ObjectType::Host || *t == ObjectType::Comment)
            .cloned()
            .collect(),
    };
    if !cascade && dependents.iter().any(|(t, _)| *t == ObjectType::Service) {
        return Err(StoreError::Invalid(format!(
            "Object '{name}' has services; delete them first or pass 'cascade'."
        )));
    }
    let mut removed = vec![(otype, name.to_string())];
    removed.extend(dependents);
    let mut events = Events::new(inner);
    for (t, n) in &removed {
        if let Some(o) = inner.objects.remove(&key(*t, n)) {
            inner.children.unlink(&o);
            events.add("ObjectDeleted", &o, time, || json!({"object_type": t.name(), "object_name": n}));
        }
    }
    Ok(Outcome { removed, comment: None, events: events.list })
}

fn check_result(
    inner: &mut Inner,
    otype: ObjectType,
    name: &str,
    cr: &CheckResult,
    time: f64,
) -> Result<Outcome, StoreError> {
    let mut events = Events::new(inner);
    if !otype.is_checkable() {
        return Err(StoreError::Invalid(format!("Object '{name}' is not a checkable.")));
    }
    let is_host = otype == ObjectType::Host;
    let max = if is_host { 1 } else { 3 };
    if !(0..=max).contains(&cr.exit_status) {
        return Err(StoreError::Invalid(format!("Invalid 'exit_status' for {} {name}.", otype.name())));
    }
    cr.check_bounds("command").map_err(|e| StoreError::Invalid(e.to_string()))?;
    let obj = get_mut(inner, otype, name)?;
    if obj.attr("enable_passive_checks") == &json!(false) {
        return Err(StoreError::PassiveDisabled(name.to_string()));
    }
    let last_end = obj.attr("last_check_result").get("execution_end").and_then(Value::as_f64);
    if last_end.is_some_and(|end| end > cr.execution_end) {
        return Err(StoreError::Outdated(name.to_string()));
    }
    let before = checked(obj);
    let max_attempts = obj.attrs.get("max_check_attempts").and_then(attempts).unwrap_or(3);
    let t = transition::next(before, cr.object_state(is_host), max_attempts);
    let processed = processed(obj, is_host, cr, &t);
    let (state, state_type) = (t.after.state, t.after.state_type.number());
    let end = cr.execution_end;
    let a = &mut obj.attrs;
    a.insert("last_check_result".into(), cr.to_attr(is_host, processed));
    a.insert("last_check".into(), json!(end));
    a.insert("last_state".into(), json!(before.state));
    a.insert("last_state_type".into(), json!(before.state_type.number()));
    a.insert("state".into(), json!(state));
    a.insert("state_type".into(), json!(state_type));
    a.insert("check_attempt".into(), json!(t.after.attempt));
    // Icinga dates both changes by the result's end, not by when it arrived.
    if t.state_change {
        a.insert("last_state_change".into(), json!(end));
    }
    if t.hard_change {
        a.insert("last_hard_state".into(), json!(state));
        a.insert("last_hard_state_change".into(), json!(end));
    }
    // An acknowledgement ends with the problem, as Icinga's: a normal one at
    // any state change, a sticky one only at OK. Icinga clears it before it
    // announces the result, so its event comes first.
    let ack = obj.attr("acknowledgement").as_i64().unwrap_or(0);
    if t.state_change && (ack == 1 || (ack == 2 && state == 0)) {
        obj.attrs.insert("acknowledgement".into(), json!(0));
        obj.attrs.insert("acknowledgement_expiry".into(), json!(0));
        events.add("AcknowledgementCleared", obj, time, || json!({"state": state}));
    }
    // The result is copied into events only for a listener.
    let attr = |obj: &Object| obj.attr("last_check_result").clone();
    events.add("CheckResult", obj, time, || json!({"check_result": attr(obj)}));
    if t.announced() {
        events.add(
            "StateChange",
            obj,
            time,
            || json!({"state": state, "state_type": state_type, "check_result": attr(obj)}),
        );
    }
    Outcome::events(events.list)
}

/// What the state machine reads of a checkable; attributes a state file
/// written before it existed lacks read as a HARD state at attempt 1.
fn checked(obj: &Object) -> Checked {
    Checked {
        state: obj.attr("state").as_i64().unwrap_or(0),
        state_type: StateType::from_number(obj.attr("state_type").as_i64()),
        attempt: obj.attr("check_attempt").as_i64().unwrap_or(1),
    }
}

/// What Icinga records in a result as it processes it. `previous_hard_state`
/// is the HARD state before the current one: the one this result replaces
/// if it makes a hard change, else the one the last result recorded; 99
/// (pending) before there was any.
fn processed(obj: &Object, is_host: bool, cr: &CheckResult, t: &Transition) -> Processed {
    let last = obj.attr("last_check_result");
    let raw = |state: i64| if is_host { host_result_state(state) } else { state };
    let hard_before = obj.attr("last_hard_state").as_i64().unwrap_or(0);
    // Until the first hard change, the time of the last one is still the default 0.
    let had_hard = !last.is_null() && obj.attr("last_hard_state_change").as_f64() != Some(0.0);
    let previous_hard_state = if t.hard_change {
        if had_hard {
            raw(hard_before)
        } else {
            PENDING
        }
    } else {
        last.get("previous_hard_state").and_then(Value::as_i64).unwrap_or(PENDING)
    };
    let vars_after = json!({
        "attempt": t.after.attempt,
        // No dependencies exist here: every checkable is reachable.
        "reachable": true,
        "state": cr.state(is_host),
        "state_type": t.after.state_type.number(),
    });
    let vars_before = last.get("vars_after").cloned().unwrap_or(Value::Null);
    Processed { previous_hard_state, vars_before, vars_after }
}

/// Icinga's `ServicePending`: the state of a result not yet had.
const PENDING: i64 = 99;

#[allow(clippy::too_many_arguments)]
fn acknowledge(
    inner: &mut Inner,
    otype: ObjectType,
    name: &str,
    author: &str,
    comment: &str,
    sticky: bool,
    expiry: f64,
    time: f64,
) -> Result<Outcome, StoreError> {
    if !otype.is_checkable() {
        return Err(StoreError::Invalid(format!("Object '{name}' is not a checkable.")));
    }
    let mut events = Events::new(inner);
    let obj = get_mut(inner, otype, name)?;
    if obj.attr("state").as_i64().unwrap_or(0) == 0 {
        return Err(StoreError::Invalid(format!(
            "The object '{name}' is in an OK/UP state and cannot be acknowledged."
        )));
    }
    if obj.attr("acknowledgement").as_i64().unwrap_or(0) != 0 {
        return Err(StoreError::Invalid(format!("The object '{name}' is already acknowledged.")));
    }
    obj.attrs.insert("acknowledgement".into(), json!(if sticky { 2 } else { 1 }));
    obj.attrs.insert("acknowledgement_expiry".into(), json!(expiry));
    events.add("AcknowledgementSet", obj, time, || {
        let kind = if sticky { 2 } else { 1 };
        json!({"author": author, "comment": comment, "acknowledgement_type": kind, "expiry": expiry})
    });
    Outcome::events(events.list)
}

fn remove_ack(inner: &mut Inner, otype: ObjectType, name: &str, time: f64) -> Result<Outcome, StoreError> {
    let mut events = Events::new(inner);
    let obj = get_mut(inner, otype, name)?;
    obj.attrs.insert("acknowledgement".into(), json!(0));
    obj.attrs.insert("acknowledgement_expiry".into(), json!(0));
    events.add("AcknowledgementCleared", obj, time, || json!({}));
    Outcome::events(events.list)
}

fn add_comment(
    inner: &mut Inner,
    otype: ObjectType,
    name: &str,
    author: &str,
    text: &str,
    time: f64,
) -> Result<Outcome, StoreError> {
    if !otype.is_checkable() {
        return Err(StoreError::Invalid(format!("Object '{name}' is not a checkable.")));
    }
    let obj = inner.objects.get(&key(otype, name)).ok_or_else(|| StoreError::NotFound(name.to_string()))?;
    let host = obj.host_name().to_string();
    // Numbered, not random, so that a simulated run names comments the same way every time.
    let comment_name = format!("{name}!{}", inner.next_comment);
    inner.next_comment += 1;
    let service_name = if otype == ObjectType::Service { json!(name) } else { json!("") };
    let mut attrs = defaults(ObjectType::Comment, &comment_name);
    for (k, v) in [
        ("author", json!(author)),
        ("text", json!(text)),
        ("host_name", json!(host)),
        ("service_name", service_name),
        ("entry_time", json!(time)),
        ("entry_type", json!(1)),
    ] {
        attrs.insert(k.into(), v);
    }
    let comment =
        Object { otype: ObjectType::Comment, name: comment_name.clone(), attrs: attrs.into_iter().collect() };
    inner.children.link(&comment);
    inner.objects.insert(key(ObjectType::Comment, &comment_name), Arc::new(comment));
    Ok(Outcome { comment: Some(comment_name), ..Outcome::default() })
}

fn remove_comment(inner: &mut Inner, name: &str, _time: f64) -> Result<Outcome, StoreError> {
    let comment = inner
        .objects
        .remove(&key(ObjectType::Comment, name))
        .ok_or_else(|| StoreError::NotFound(name.to_string()))?;
    inner.children.unlink(&comment);
    Ok(Outcome { removed: vec![(ObjectType::Comment, name.to_string())], ..Outcome::default() })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use serde_json::json;

    use crate::input::{depth, MAX_DEPTH};
    use crate::store::{
        CheckResult, Mutation, ObjectType, Origin, Store, StoreError, MAX_CHECK_RESULT_BYTES,
    };

    fn store_with_host() -> Store {
        let store = Store::new(None);
        let attrs = json!({"vars": {"os": "linux"}, "notes": "n", "check_command": "dummy"});
        let attrs = attrs.as_object().cloned().unwrap();
        let create = Mutation::Create { otype: ObjectType::Host, name: "h".into(), attrs };
        store.change(create, Origin::Local, SystemTime::UNIX_EPOCH + Duration::from_secs(1)).unwrap();
        store
    }

    fn modify(store: &Store, set: &[(&str, serde_json::Value)], restore: &[&str]) -> Result<(), StoreError> {
        let set = set.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let restore = restore.iter().map(|k| k.to_string()).collect();
        let m = Mutation::Modify { otype: ObjectType::Host, name: "h".into(), set, restore };
        store.change(m, Origin::Local, SystemTime::UNIX_EPOCH + Duration::from_secs(2)).map(|_| ())
    }

    #[test]
    fn an_object_a_reader_holds_does_not_change_under_it() {
        let store = store_with_host();
        let held = store.get(ObjectType::Host, "h").unwrap();
        modify(&store, &[("notes", json!("changed"))], &[]).unwrap();
        assert_eq!(held.attr("notes"), &json!("n"), "the reader's copy must keep what it read");
        let now = store.get(ObjectType::Host, "h").unwrap();
        assert_eq!(now.attr("notes"), &json!("changed"), "the store must hold the new value");
    }

    #[test]
    fn paths_create_dictionaries_on_the_way() {
        let store = store_with_host();
        modify(&store, &[("vars.a.b", json!(1)), ("notes", json!("x"))], &[]).unwrap();
        let h = store.get(ObjectType::Host, "h").unwrap();
        assert_eq!(h.attr("vars"), &json!({"os": "linux", "a": {"b": 1}}));
        assert_eq!(h.attr("notes"), &json!("x"));
    }

    #[test]
    fn a_modify_that_fails_halfway_changes_nothing() {
        let store = store_with_host();
        let before = store.get(ObjectType::Host, "h").unwrap();
        // Each path in its own attribute: checked before anything is set.
        let err = modify(&store, &[("notes", json!("x")), ("vars.os.major", json!(9))], &[]);
        assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
        assert_eq!(store.get(ObjectType::Host, "h").unwrap(), before);
        // A later path through what an earlier one set: only a copy can tell.
        let err = modify(&store, &[("vars", json!(5)), ("vars.x", json!(1))], &[]);
        assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
        assert_eq!(store.get(ObjectType::Host, "h").unwrap(), before);
        let err = modify(&store, &[("notes", json!("x")), ("vars.os.major", json!(9))], &["vars"]);
        assert!(err.is_ok(), "restoring vars first makes the path settable: {err:?}");
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn the_store_refuses_an_attribute_deeper_than_the_limit_and_changes_nothing() {
        let store = store_with_host();
        let before = store.get(ObjectType::Host, "h").unwrap();
        let deepest = vec!["a"; MAX_DEPTH - 1].join(".");
        let err = modify(&store, &[("notes", json!("x")), (&format!("vars.{deepest}"), json!([[1]]))], &[]);
        let named = "attribute 'vars' is nested deeper than the limit of 32 levels";
        assert_eq!(err, Err(StoreError::Invalid(named.into())));
        assert_eq!(store.get(ObjectType::Host, "h").unwrap(), before);
        modify(&store, &[(&format!("vars.{deepest}"), json!([1]))], &[]).unwrap();
        let h = store.get(ObjectType::Host, "h").unwrap();
        assert_eq!(depth(h.attr("vars")), MAX_DEPTH, "the deepest path the limit allows is stored");
        let attrs = json!({ format!("vars.{deepest}.b"): 1, "check_command": "dummy" });
        let attrs = attrs.as_object().cloned().unwrap();
        let create = Mutation::Create { otype: ObjectType::Host, name: "h2".into(), attrs };
        assert!(matches!(store.change(create, Origin::Local, at(3)), Err(StoreError::Invalid(_))));
        assert!(store.get(ObjectType::Host, "h2").is_none());
    }

    #[test]
    fn create_sets_dotted_paths_as_modify_does() {
        // Scenario: PUT /v1/objects/hosts/h with {"attrs":{"vars.os":"linux"}}.
        // Bug: the key was stored literally, an attribute named "vars.os".
        // Fix: create sets paths in key order, as Icinga's config does.
        let store = Store::new(None);
        let attrs = json!({"vars": {"a": 1}, "vars.os": "linux", "vars.x.y": 2, "check_command": "dummy"});
        let attrs = attrs.as_object().cloned().unwrap();
        let create = Mutation::Create { otype: ObjectType::Host, name: "h".into(), attrs };
        store.change(create, Origin::Local, at(1)).unwrap();
        let h = store.get(ObjectType::Host, "h").unwrap();
        assert_eq!(h.attr("vars"), &json!({"a": 1, "os": "linux", "x": {"y": 2}}));
        assert!(!h.attrs.contains_key("vars.os"));
        let attrs = json!({"address.x": 1, "check_command": "dummy"}).as_object().cloned().unwrap();
        let create = Mutation::Create { otype: ObjectType::Host, name: "h2".into(), attrs };
        assert!(matches!(store.change(create, Origin::Local, at(1)), Err(StoreError::Invalid(_))));
        assert!(store.get(ObjectType::Host, "h2").is_none());
    }

    #[test]
    fn a_modify_is_validated_for_what_it_touches_and_a_refusal_changes_nothing() {
        // Scenario: modifies that empty check_command, restore it to its empty
        // default, or set max_check_attempts to something not above 0.
        // Bug: each left a checkable Icinga's validation would never accept.
        // Fix: a modify that touches a validated attribute is checked on a copy.
        let store = store_with_host();
        let before = store.get(ObjectType::Host, "h").unwrap();
        let invalid = |verb: &str, key: &str, attr: &str, message: &str| {
            Err(StoreError::Invalid(format!(
                "Attribute '{key}' could not be {verb}: Error: Validation failed for object 'h' of type 'Host'; Attribute '{attr}': {message}"
            )))
        };
        let empty = "Attribute must not be empty.";
        assert_eq!(
            modify(&store, &[("check_command", json!(null))], &[]),
            invalid("set", "check_command", "check_command", empty)
        );
        assert_eq!(
            modify(&store, &[("notes", json!("x"))], &["check_command"]),
            invalid("restored", "check_command", "check_command", empty)
        );
        let zero = "Value must be greater than 0.";
        assert_eq!(
            modify(&store, &[("max_check_attempts", json!(0.5))], &[]),
            invalid("set", "max_check_attempts", "max_check_attempts", zero)
        );
        let number = "Value must be a number greater than 0.";
        assert_eq!(
            modify(&store, &[("max_check_attempts", json!("many"))], &[]),
            invalid("set", "max_check_attempts", "max_check_attempts", number)
        );
        assert_eq!(store.get(ObjectType::Host, "h").unwrap(), before);
        modify(&store, &[("max_check_attempts", json!("5")), ("check_command", json!("ping4"))], &[])
            .unwrap();
        let h = store.get(ObjectType::Host, "h").unwrap();
        let set = (h.attr("max_check_attempts"), h.attr("check_command"));
        assert_eq!(set, (&json!(5), &json!("ping4")), "kept as the integer Icinga converts it to");
    }

    #[test]
    fn an_object_loaded_without_check_command_can_still_be_modified() {
        // Scenario: a state file written before creation required check_command.
        // Bug: every later modify would be refused for an attribute it never named.
        // Fix: a modify validates only the attributes it sets or restores.
        let store = Store::new(None);
        let mut attrs = super::defaults(ObjectType::Host, "old");
        attrs.remove("check_command");
        let old = crate::store::Object { otype: ObjectType::Host, name: "old".into(), attrs };
        store.restore(crate::store::StoreSnapshot { objects: vec![Arc::new(old)], next_comment: 1 });
        let m = Mutation::Modify {
            otype: ObjectType::Host,
            name: "old".into(),
            set: vec![("max_check_attempts".into(), json!(2))],
            restore: vec!["vars".into()],
        };
        store.change(m, Origin::Local, at(2)).unwrap();
        assert_eq!(store.get(ObjectType::Host, "old").unwrap().attr("max_check_attempts"), &json!(2));
    }

    fn result(command: serde_json::Value, output: String) -> CheckResult {
        CheckResult {
            exit_status: 1,
            output,
            performance_data: None,
            check_source: "n".into(),
            command,
            execution_start: 5.0,
            execution_end: 5.0,
            ttl: 0.0,
        }
    }

    #[test]
    fn an_acknowledgement_ends_at_a_state_change_and_a_sticky_one_at_ok() {
        // Scenario: a service acknowledged in WARNING goes CRITICAL; then a
        // sticky acknowledgement through WARNING back to OK.
        // Bug: only an OK result ended an acknowledgement, sticky or not.
        // Fix: as Icinga's: a normal one ends at any state change, a sticky one at OK.
        let store = store_with_host();
        let attrs = json!({"check_command": "dummy"}).as_object().cloned().unwrap();
        let create = Mutation::Create { otype: ObjectType::Service, name: "h!s".into(), attrs };
        store.change(create, Origin::Local, at(1)).unwrap();
        let check = |exit_status: i64, end: f64| {
            let mut cr = result(json!(null), "x".into());
            (cr.exit_status, cr.execution_start, cr.execution_end) = (exit_status, end, end);
            let m = Mutation::CheckResult { otype: ObjectType::Service, name: "h!s".into(), cr };
            store.change(m, Origin::Local, at(100)).unwrap();
            store.get(ObjectType::Service, "h!s").unwrap()
        };
        let acknowledge = |sticky: bool| {
            let m = Mutation::Acknowledge {
                otype: ObjectType::Service,
                name: "h!s".into(),
                author: "a".into(),
                comment: "c".into(),
                sticky,
                expiry: 0.0,
            };
            store.change(m, Origin::Local, at(100)).unwrap();
        };
        check(1, 10.0);
        acknowledge(false);
        let s = check(2, 20.0);
        assert_eq!(s.attr("acknowledgement"), &json!(0), "WARNING to CRITICAL ends a normal one");
        assert_eq!(s.attr("last_state_change"), &json!(20.0), "dated by the result, not its arrival");
        acknowledge(true);
        assert_eq!(check(1, 30.0).attr("acknowledgement"), &json!(2), "a sticky one outlasts a change");
        assert_eq!(check(0, 40.0).attr("acknowledgement"), &json!(0), "and ends at OK");
    }

    fn nested(levels: usize) -> serde_json::Value {
        (0..levels).fold(json!(1), |v, _| json!([v]))
    }

    #[test]
    fn the_store_refuses_a_check_result_too_deep_or_too_large() {
        let store = store_with_host();
        let before = store.get(ObjectType::Host, "h").unwrap();
        let apply = |cr| {
            store.change(
                Mutation::CheckResult { otype: ObjectType::Host, name: "h".into(), cr },
                Origin::Local,
                at(5),
            )
        };
        let err = apply(result(nested(MAX_DEPTH), "x".into())).unwrap_err();
        let named = "'command' is nested deeper than the limit of 31 levels";
        assert_eq!(err, StoreError::Invalid(named.into()));
        let large = "x".repeat(MAX_CHECK_RESULT_BYTES);
        assert!(matches!(apply(result(json!(null), large)), Err(StoreError::Invalid(_))));
        assert_eq!(store.get(ObjectType::Host, "h").unwrap(), before);
        let room = MAX_CHECK_RESULT_BYTES - nested(MAX_DEPTH - 1).to_string().len();
        apply(result(nested(MAX_DEPTH - 1), "x".repeat(room - 1))).unwrap();
        let h = store.get(ObjectType::Host, "h").unwrap();
        assert_eq!(depth(h.attr("last_check_result")), MAX_DEPTH);
    }
}
