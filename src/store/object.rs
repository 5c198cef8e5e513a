//! Object types and objects as the API shows them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The object types the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjectType {
    /// `Host`.
    Host,
    /// `Service`, named `host!service`.
    Service,
    /// `Comment`, named `host[!service]!<n>`.
    Comment,
}

impl ObjectType {
    /// Every type, in a fixed order.
    pub const ALL: [ObjectType; 3] = [ObjectType::Host, ObjectType::Service, ObjectType::Comment];

    /// The type's name as the API spells it (`Host`).
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Host => "Host",
            ObjectType::Service => "Service",
            ObjectType::Comment => "Comment",
        }
    }

    /// The lower-case name used in filters and selectors (`host`).
    pub fn lower(self) -> &'static str {
        match self {
            ObjectType::Host => "host",
            ObjectType::Service => "service",
            ObjectType::Comment => "comment",
        }
    }

    /// The plural used in URLs (`hosts`).
    pub fn plural(self) -> &'static str {
        match self {
            ObjectType::Host => "hosts",
            ObjectType::Service => "services",
            ObjectType::Comment => "comments",
        }
    }

    /// Parses a plural URL segment, case-insensitively.
    pub fn from_plural(s: &str) -> Option<ObjectType> {
        Self::ALL.into_iter().find(|t| t.plural().eq_ignore_ascii_case(s))
    }

    /// Parses a type name (`Host`, `host`), case-insensitively.
    pub fn from_name(s: &str) -> Option<ObjectType> {
        Self::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// Whether objects of this type carry check state.
    pub fn is_checkable(self) -> bool {
        matches!(self, ObjectType::Host | ObjectType::Service)
    }
}

/// Attributes the API may set on create or modify. Everything else is
/// runtime state owned by the store.
pub const CONFIG_ATTRS: &[&str] = &[
    "display_name",
    "address",
    "address6",
    "check_command",
    "check_interval",
    "retry_interval",
    "max_check_attempts",
    "enable_active_checks",
    "enable_passive_checks",
    "enable_notifications",
    "enable_event_handler",
    "enable_flapping",
    "enable_perfdata",
    "event_command",
    "groups",
    "notes",
    "notes_url",
    "action_url",
    "icon_image",
    "zone",
    "vars",
    "host_name",
];

/// One object: its type, full name and attributes (including the runtime state).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Object {
    /// The type.
    #[serde(rename = "type")]
    pub otype: ObjectType,
    /// The full name (`web1`, `web1!http`).
    pub name: String,
    /// Every attribute, keyed by name, as the API returns it.
    pub attrs: Map<String, Value>,
}

impl Object {
    /// The attribute `key`, or null.
    pub fn attr(&self, key: &str) -> &Value {
        self.attrs.get(key).unwrap_or(&Value::Null)
    }

    /// Lets go of a shared object and keeps its type and name. Handlers call
    /// it before they mutate the object, so that the store changes it in place
    /// instead of copying it for a reader that no longer needs it.
    pub fn release(obj: Arc<Object>) -> (ObjectType, String) {
        match Arc::try_unwrap(obj) {
            Ok(o) => (o.otype, o.name),
            Err(shared) => (shared.otype, shared.name.clone()),
        }
    }

    /// The host part of a service or comment name; a host's own name.
    pub fn host_name(&self) -> &str {
        match self.otype {
            ObjectType::Host => &self.name,
            _ => self.attr("host_name").as_str().unwrap_or(""),
        }
    }
}

/// Splits `host!service` into its parts.
pub fn split_service_name(name: &str) -> Option<(&str, &str)> {
    let (host, service) = name.split_once('!')?;
    (!host.is_empty() && !service.is_empty() && !service.contains('!')).then_some((host, service))
}
