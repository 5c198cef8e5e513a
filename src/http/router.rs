//! Which handler takes a request, from its method and decoded path segments,
//! as Icinga's URL handler tree decides (each handler declines by method and
//! path length).

use hyper::Method;

/// The handler a request goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: redirect to `/v1`.
    Root,
    /// `GET /v1`.
    Info,
    /// `GET /v1/status[/<Name>]`.
    Status { name: Option<String> },
    /// `GET /v1/objects/<plural>[/<name>]`.
    Query { plural: String, name: Option<String> },
    /// `PUT /v1/objects/<plural>/<name>`.
    Create { plural: String, name: String },
    /// `POST /v1/objects/<plural>[/<name>]`.
    Modify { plural: String, name: Option<String> },
    /// `DELETE /v1/objects/<plural>[/<name>]`.
    Delete { plural: String, name: Option<String> },
    /// `POST /v1/actions/<action>`.
    Action { action: String },
    /// `POST /v1/events`.
    Events,
    /// Nothing takes it: 404.
    NotFound,
}

/// Routes a request.
pub fn route(method: &Method, segments: &[String]) -> Route {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (method.as_str(), s.as_slice()) {
        ("GET", []) => Route::Root,
        ("GET", ["v1"]) => Route::Info,
        ("GET", ["v1", "status"]) => Route::Status { name: None },
        ("GET", ["v1", "status", name]) => Route::Status { name: Some(name.to_string()) },
        (m, ["v1", "objects", plural, rest @ ..]) if rest.len() <= 1 => {
            let (plural, name) = (plural.to_string(), rest.first().map(|n| n.to_string()));
            match (m, name) {
                ("GET", name) => Route::Query { plural, name },
                ("PUT", Some(name)) => Route::Create { plural, name },
                ("POST", name) => Route::Modify { plural, name },
                ("DELETE", name) => Route::Delete { plural, name },
                _ => Route::NotFound,
            }
        }
        ("POST", ["v1", "actions", action]) => Route::Action { action: action.to_string() },
        ("POST", ["v1", "events"]) => Route::Events,
        _ => Route::NotFound,
    }
}

/// Icinga's text for a path nothing takes.
pub fn not_found_text(segments: &[String]) -> String {
    format!(
        "The requested path '{}' could not be found or the request method is not valid for this path.",
        segments.join("/")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: &str, path: &str) -> Route {
        let segments = crate::http::params::path_segments(path);
        route(&Method::from_bytes(method.as_bytes()).unwrap(), &segments)
    }

    #[test]
    fn routes_by_method_and_path_length() {
        assert_eq!(r("GET", "/"), Route::Root);
        assert_eq!(r("GET", "/v1"), Route::Info);
        assert_eq!(r("GET", "/v1/status/ApiListener"), Route::Status { name: Some("ApiListener".into()) });
        assert_eq!(r("GET", "/v1/objects/hosts"), Route::Query { plural: "hosts".into(), name: None });
        assert_eq!(
            r("PUT", "/v1/objects/hosts/a"),
            Route::Create { plural: "hosts".into(), name: "a".into() }
        );
        assert_eq!(r("PUT", "/v1/objects/hosts"), Route::NotFound);
        assert_eq!(
            r("POST", "/v1/objects/services/a!b"),
            Route::Modify { plural: "services".into(), name: Some("a!b".into()) }
        );
        assert_eq!(r("DELETE", "/v1/objects/hosts"), Route::Delete { plural: "hosts".into(), name: None });
        assert_eq!(
            r("POST", "/v1/actions/process-check-result"),
            Route::Action { action: "process-check-result".into() }
        );
        assert_eq!(r("POST", "/v1/events"), Route::Events);
    }

    #[test]
    fn wrong_methods_and_paths_are_not_found() {
        assert_eq!(r("GET", "/v1/events"), Route::NotFound);
        assert_eq!(r("DELETE", "/v1"), Route::NotFound);
        assert_eq!(r("GET", "/v1/objects/hosts/a/b"), Route::NotFound);
        assert_eq!(r("GET", "/v1/actions/x"), Route::NotFound);
        assert_eq!(r("PATCH", "/v1/objects/hosts"), Route::NotFound);
        assert_eq!(r("GET", "/v2"), Route::NotFound);
        assert_eq!(r("GET", "/v1/objects"), Route::NotFound);
    }

    #[test]
    fn not_found_text_joins_the_segments() {
        let segments = vec!["v1".to_string(), "nope".to_string()];
        assert_eq!(
            not_found_text(&segments),
            "The requested path 'v1/nope' could not be found or the request method is not valid for this path."
        );
    }
}
