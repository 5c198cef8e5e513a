//! Request parameters as Icinga reads them: the JSON body, merged with the
//! query string (each query key becomes a list of strings and overrides the
//! body's key), and the "last parameter" reading of lists.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use crate::input::{self, InputError, MAX_DEPTH};

/// The merged parameters of one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(Map<String, Value>);

/// Why a value is not a list of strings.
#[derive(Debug, PartialEq, Eq)]
pub struct NotAList;

impl Params {
    /// Parses the body (empty: no parameters) and merges the query string in.
    /// The error is the text after `Invalid request body: `. One depth check
    /// of the merged result bounds the body, the URL's parameters and
    /// everything read from them (`attrs`, `filter_vars`, ...).
    pub fn from_request(body: &[u8], query: Option<&str>) -> Result<Params, String> {
        let mut map = if body.is_empty() {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err("the body must be a JSON object.".into()),
                Err(e) if input::is_too_deep(&e) => return Err(too_deep().to_string()),
                Err(e) => return Err(e.to_string()),
            }
        };
        let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (key, value) in parse_query(query.unwrap_or("")) {
            grouped.entry(key).or_default().push(Value::String(value));
        }
        for (key, values) in grouped {
            map.insert(key, Value::Array(values));
        }
        input::check_object_depth(&map, MAX_DEPTH, || "the request body".into())
            .map_err(|e| e.to_string())?;
        Ok(Params(map))
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// Whether `key` was given at all (even as null), as Icinga's `Contains`.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Sets `key`, as handlers do with the type and name from the URL.
    pub fn set(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_string(), value);
    }

    /// Icinga's `GetLastParameter`: the last element of a list, else the value.
    pub fn last(&self, key: &str) -> Option<&Value> {
        match self.0.get(key)? {
            Value::Array(items) => items.last(),
            v => Some(v),
        }
    }

    /// The last value of `key` as text, if it is a string, number or boolean.
    pub fn last_string(&self, key: &str) -> Option<String> {
        self.last(key).and_then(scalar_string)
    }

    /// The last value of `key` read as a flag (absent: false).
    pub fn flag(&self, key: &str) -> bool {
        self.last(key).is_some_and(truthy)
    }

    /// `key` as a list of strings: a list of scalars, or one scalar alone.
    pub fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, NotAList> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => {
                items.iter().map(|v| scalar_string(v).ok_or(NotAList)).collect::<Result<_, _>>().map(Some)
            }
            Some(v) => scalar_string(v).map(|s| Some(vec![s])).ok_or(NotAList),
        }
    }
}

fn too_deep() -> InputError {
    InputError::TooDeep { what: "the request body".into(), limit: MAX_DEPTH }
}

/// Text of a string, number or boolean.
pub fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value read as a flag: query strings arrive as text, so `"0"`, `"false"`
/// and the empty string are false, as are 0, null and empty containers.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !(s.is_empty() || s == "0" || s.eq_ignore_ascii_case("false")),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `a=1&b[]=2&b[]=3` as pairs, percent-decoded (no `+` for space, as Icinga).
/// A `[]` suffix is dropped; tokens without a key are ignored.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|t| !t.is_empty())
        .filter_map(|token| {
            let (key, value) = token.split_once('=').unwrap_or((token, ""));
            let key = decode(key.strip_suffix("[]").unwrap_or(key));
            (!key.is_empty()).then(|| (key, decode(value)))
        })
        .collect()
}

/// The non-empty segments of a URL path, percent-decoded.
pub fn path_segments(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(decode).collect()
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_keys_become_lists_and_override_the_body() {
        let body = br#"{"attrs":["name"],"filter":"host.name==\"a\"","pretty":false}"#;
        let p = Params::from_request(body, Some("attrs=state&attrs[]=vars&pretty=1")).unwrap();
        assert_eq!(p.get("attrs"), Some(&json!(["state", "vars"])));
        assert_eq!(p.last_string("filter").as_deref(), Some("host.name==\"a\""));
        assert!(p.flag("pretty"));
    }

    #[test]
    fn last_parameter_reads_the_end_of_a_list() {
        let p = Params::from_request(br#"{"a":[1,2,3],"b":"x","c":[]}"#, None).unwrap();
        assert_eq!(p.last("a"), Some(&json!(3)));
        assert_eq!(p.last("b"), Some(&json!("x")));
        assert_eq!(p.last("c"), None);
        assert!(p.contains("c"));
        assert_eq!(p.last("missing"), None);
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_errors() {
        assert!(Params::from_request(b"{", None).is_err());
        assert!(Params::from_request(b"[1]", None).is_err());
        assert!(Params::from_request(b"   ", None).is_err());
        assert_eq!(Params::from_request(b"", None), Ok(Params::default()));
        let deep = "[".repeat(10_000);
        assert!(
            Params::from_request(deep.as_bytes(), None).is_err(),
            "deep nesting is an error, not a crash"
        );
    }

    fn nested_body(levels: usize) -> String {
        format!("{}{}", "{\"a\":".repeat(levels), "1".to_string() + &"}".repeat(levels))
    }

    #[test]
    fn a_body_deeper_than_the_limit_is_refused_naming_it() {
        assert!(Params::from_request(nested_body(MAX_DEPTH).as_bytes(), Some("x=1")).is_ok());
        let named = Err("the request body is nested deeper than the limit of 32 levels".to_string());
        assert_eq!(Params::from_request(nested_body(MAX_DEPTH + 1).as_bytes(), None), named);
        assert_eq!(Params::from_request(nested_body(200).as_bytes(), None), named, "past serde_json's own");
        let vars = format!(r#"{{"filter":"true","filter_vars":{}}}"#, nested_body(MAX_DEPTH));
        assert_eq!(Params::from_request(vars.as_bytes(), None), named);
    }

    #[test]
    fn query_strings_are_percent_decoded_without_plus() {
        let pairs = parse_query("host=web%211&output=a+b&=x&flag&bad=%zz&&utf=%ff");
        assert_eq!(
            pairs,
            vec![
                ("host".into(), "web!1".into()),
                ("output".into(), "a+b".into()),
                ("flag".into(), "".into()),
                ("bad".into(), "%zz".into()),
                ("utf".into(), "\u{fffd}".into()),
            ]
        );
    }

    #[test]
    fn path_segments_drop_empty_ones_and_decode() {
        assert_eq!(
            path_segments("/v1/objects/services/web1%21http/"),
            vec!["v1", "objects", "services", "web1!http"]
        );
        assert_eq!(path_segments("/"), Vec::<String>::new());
    }

    #[test]
    fn flags_and_lists_read_query_text() {
        let p = Params::from_request(br#"{"n":5,"o":{"x":1}}"#, Some("a=0&b=false&c=yes&types=CheckResult"))
            .unwrap();
        assert!(!p.flag("a") && !p.flag("b") && p.flag("c") && !p.flag("none"));
        assert_eq!(p.string_list("types"), Ok(Some(vec!["CheckResult".to_string()])));
        assert_eq!(p.string_list("n"), Ok(Some(vec!["5".to_string()])));
        assert_eq!(p.string_list("o"), Err(NotAList));
        assert_eq!(p.string_list("none"), Ok(None));
    }

    mod props {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        use proptest::prelude::*;

        use super::super::*;

        /// Text a URL may hold and what tries to break decoding: `%` with
        /// and without hex digits, separators, and invalid UTF-8 encoded.
        fn awkward() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                3 => "[a-z0-9]{0,4}",
                2 => "%[0-9a-fA-FzZ%]{0,2}",
                1 => prop::sample::select(vec!["&", "=", "[]", "/", "&&", "==", "%%", "%ff%fe", "%c3", "%e2%82"]).prop_map(String::from),
                1 => "\\PC{0,3}",
            ];
            prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
        }

        fn encode(s: &str) -> String {
            utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
        }

        proptest! {
            #[test]
            fn any_query_string_parses_without_panicking(query in awkward()) {
                let pairs = parse_query(&query);
                prop_assert!(pairs.len() <= query.split('&').count());
                prop_assert!(pairs.iter().all(|(k, _)| !k.is_empty()));
                let params = Params::from_request(b"", Some(&query));
                prop_assert!(params.is_ok(), "query parameters nest two levels: {:?}", params);
            }

            #[test]
            fn any_bytes_in_a_body_or_path_are_an_answer_not_a_panic(
                bytes in prop::collection::vec(any::<u8>(), 0..200),
                path in awkward(),
            ) {
                let _ = Params::from_request(&bytes, Some(&String::from_utf8_lossy(&bytes)));
                prop_assert!(path_segments(&path).iter().all(|s| !s.is_empty()));
            }

            #[test]
            fn encoded_pairs_and_segments_decode_back(
                pairs in prop::collection::vec(("\\PC{1,8}", "\\PC{0,8}"), 0..8),
                segments in prop::collection::vec("\\PC{1,8}", 0..8),
            ) {
                let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
                prop_assert_eq!(parse_query(&query.join("&")), pairs);
                let path: String = segments.iter().map(|s| format!("/{}", encode(s))).collect();
                prop_assert_eq!(path_segments(&path), segments);
            }
        }

        proptest! {
            // Each case is large: a few show what size changes.
            #![proptest_config(ProptestConfig::with_cases(12))]

            #[test]
            fn huge_query_strings_and_paths_are_read_in_full(n in 10_000..100_000usize) {
                let query = "a=%ff&".repeat(n / 6);
                prop_assert_eq!(parse_query(&query).len(), n / 6);
                let path = "/%zz".repeat(n / 4);
                prop_assert_eq!(path_segments(&path).len(), n / 4);
            }
        }
    }
}
