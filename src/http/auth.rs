//! Who is asking and what they may do: HTTP Basic authentication against the
//! configured API users, and Icinga's wildcard permissions.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::ApiUser;

/// The user and password of an `Authorization: Basic ...` header value, or
/// `None` if it is not one (wrong scheme, bad base64, not UTF-8, no colon).
pub fn parse_basic(header: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    // Split at the first colon: a password may contain colons, a user name not.
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The configured user the header authenticates, if any. The user must
/// exist and the password be non-empty and equal.
///
/// Every configured user is compared, by digests of equal length and in
/// constant time, so an unknown user costs as much as a wrong password and
/// neither the name nor the password's length shows in the answer's timing.
pub fn authenticate<'a>(users: &'a [ApiUser], header: Option<&[u8]>) -> Option<&'a ApiUser> {
    let (name, password) = parse_basic(header?)?;
    let (name, password) = (digest(&name), digest(&password));
    let mut found = None;
    for user in users {
        let usable = Choice::from(u8::from(!user.password.is_empty()));
        let equal = digest(&user.name).ct_eq(&name) & digest(&user.password).ct_eq(&password) & usable;
        if bool::from(equal) {
            found = Some(user);
        }
    }
    found
}

fn digest(text: &str) -> [u8; 32] {
    #[cfg(test)]
    tests::DIGESTS.with(|n| n.set(n.get() + 1));
    Sha256::digest(text.as_bytes()).into()
}

/// Whether any of `permissions` grants `required`: a case-insensitive match
/// where `*` stands for any run of characters and `?` for one.
pub fn has_permission(permissions: &[String], required: &str) -> bool {
    let required = required.to_lowercase();
    permissions.iter().any(|p| wildcard_match(&p.to_lowercase(), &required))
}

/// Icinga's `Utility::Match`: a glob with `*` and `?`, nothing else special.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it is currently matched up to,
    // so that a mismatch can backtrack by letting that star take one more char.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The body limit for a user: the admin limit if any permission matches
/// `config/modify` (so `*` qualifies), as Icinga does.
pub fn body_limit(user: &ApiUser, normal: usize, admin: usize) -> usize {
    if has_permission(&user.permissions, "config/modify") {
        admin
    } else {
        normal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Digests computed on this thread: the work an authentication does.
        pub(super) static DIGESTS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn work(users: &[ApiUser], credentials: &str) -> usize {
        DIGESTS.with(|n| n.set(0));
        let _ = authenticate(users, Some(&basic(credentials)));
        DIGESTS.with(|n| n.get())
    }

    #[test]
    fn an_unknown_user_costs_as_much_as_a_wrong_password() {
        // Scenario: an attacker probes user names.
        // Bug: an unknown name returned before any password was compared, so
        // its answer came measurably sooner than a wrong password's.
        // Fix: every configured user is compared, by fixed-length digests.
        let users = vec![user("root", "icinga", &["*"]), user("ro", "a much longer password", &["*"])];
        let unknown = work(&users, "nobody:icinga");
        assert_eq!(work(&users, "root:wrong"), unknown);
        assert_eq!(work(&users, "ro:x"), unknown);
        assert_eq!(work(&users, "root:icinga"), unknown, "success does the same work");
    }

    fn user(name: &str, password: &str, perms: &[&str]) -> ApiUser {
        ApiUser {
            name: name.into(),
            password: password.into(),
            permissions: perms.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn basic(credentials: &str) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(credentials)).into_bytes()
    }

    #[test]
    fn basic_header_is_split_at_the_first_colon() {
        assert_eq!(parse_basic(&basic("root:pa:ss")), Some(("root".into(), "pa:ss".into())));
        assert_eq!(parse_basic(b"basic cm9vdDppY2luZ2E="), Some(("root".into(), "icinga".into())));
    }

    #[test]
    fn malformed_basic_headers_are_refused_without_panicking() {
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!notbase64"), None);
        assert_eq!(parse_basic(&basic("nocolon")), None);
        assert_eq!(parse_basic(b"Basic"), None);
        assert_eq!(parse_basic(&[0xff, 0xfe, b' ', b'x']), None);
        let not_utf8 = format!("Basic {}", STANDARD.encode([0xffu8, b':', b'x']));
        assert_eq!(parse_basic(not_utf8.as_bytes()), None);
    }

    #[test]
    fn authentication_needs_a_known_user_and_the_exact_password() {
        let users = vec![user("root", "icinga", &["*"]), user("empty", "", &["*"])];
        assert_eq!(authenticate(&users, Some(&basic("root:icinga"))).map(|u| u.name.as_str()), Some("root"));
        assert!(authenticate(&users, Some(&basic("root:icinga2"))).is_none());
        assert!(authenticate(&users, Some(&basic("root:icing"))).is_none());
        assert!(authenticate(&users, Some(&basic("nobody:icinga"))).is_none());
        assert!(authenticate(&users, Some(&basic("empty:"))).is_none());
        assert!(authenticate(&users, None).is_none());
    }

    #[test]
    fn permissions_match_with_wildcards_case_insensitively() {
        let perms = vec!["objects/query/*".to_string(), "Actions/Process-Check-Result".to_string()];
        assert!(has_permission(&perms, "objects/query/Host"));
        assert!(has_permission(&perms, "actions/process-check-result"));
        assert!(!has_permission(&perms, "objects/modify/Host"));
        assert!(!has_permission(&perms, "actions/acknowledge-problem"));
        assert!(has_permission(&["*".into()], "events/CheckResult"));
        assert!(!has_permission(&[], "status/query"));
    }

    #[test]
    fn wildcard_match_handles_stars_and_question_marks() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a*b*c", "axxbyyc"));
        assert!(!wildcard_match("a*b*c", "axxbyy"));
        assert!(wildcard_match("objects/?uery/*", "objects/query/host"));
        assert!(!wildcard_match("objects/query", "objects/query/host"));
        assert!(wildcard_match("**a", "a"));
    }

    #[test]
    fn body_limit_is_raised_for_config_modify_and_star() {
        assert_eq!(body_limit(&user("a", "p", &["*"]), 1, 2), 2);
        assert_eq!(body_limit(&user("a", "p", &["config/*"]), 1, 2), 2);
        assert_eq!(body_limit(&user("a", "p", &["objects/*"]), 1, 2), 1);
    }
}
