//! How long a filter that exhausts the default `filter_budget` holds a
//! worker, for each kind of work the budget charges. Run it optimized:
//!
//! ```text
//! cargo test --release -p quiesce --lib filter_cost -- --ignored --nocapture
//! ```
//!
//! Each case evaluates one filter over its objects, round after round, until
//! the budget runs out, and prints the time that took, how many objects were
//! evaluated and the time per step. A case whose time per step is far above
//! the others means a unit cost in `src/http/filter/` is too low. A
//! measurement, not a check: it is ignored in `cargo test` and asserts nothing
//! about time.

// seam-ok: a measurement of wall time on this machine, built only for tests.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "measures real elapsed time; test-only code"
)]

use std::time::Instant;

use super::{Evaluator, Filter, Scope};
use crate::config::Limits;
use serde_json::{json, Map, Value};

/// One kind of work: a filter and the objects it runs over, in turn.
struct Case {
    name: &'static str,
    filter: String,
    objects: Vec<Map<String, Value>>,
}

#[test]
#[ignore = "a measurement; run it with --release --ignored --nocapture"]
fn filter_cost() {
    let budget = Limits::default().filter_budget;
    println!("budget {budget} steps");
    println!("{:34} {:>9} {:>8} {:>9}  outcome", "case", "ms", "objects", "ns/step");
    for case in cases() {
        run(&case, budget);
    }
}

fn run(case: &Case, budget: u64) {
    let filter = Filter::parse(&case.filter).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut eval = Evaluator::new(budget);
    let start = Instant::now(); // seam-ok: measures wall time of a test-only benchmark
    let mut objects = 0;
    let outcome = loop {
        let object = &case.objects[objects % case.objects.len()];
        match filter.matches(&Scope::new(&[], object), &mut eval) {
            Ok(_) => objects += 1,
            Err(e) => break e.to_string(),
        }
    };
    let elapsed = start.elapsed();
    let per_step = elapsed.as_nanos() as f64 / eval.budget.spent().max(1) as f64;
    let outcome: String = outcome.chars().take(40).collect();
    println!("{:34} {:>9.1} {objects:>8} {per_step:>9.1}  {outcome}", case.name, elapsed.as_secs_f64() * 1e3);
}

/// `n` copies of `operand` joined by `||`: every one is evaluated.
fn chain(operand: &str, n: usize) -> String {
    vec![operand; n].join(" || ")
}

/// A host with large attributes of every shape.
fn host() -> Map<String, Value> {
    let text = "a".repeat(10_000);
    let ab: String = (0..10_000).map(|i| if (i * 7919) % 13 < 6 { 'a' } else { 'b' }).collect();
    let list: Vec<i64> = (0..1_000).collect();
    let strings: Vec<String> = (0..1_000).map(|i| format!("value-{i:06}")).collect();
    let dict: Map<String, Value> = (0..1_000).map(|i| (format!("key-{i:06}"), json!(i))).collect();
    let vars = json!({
        "text": text, "text2": format!("{text}b"), "ab": ab, "etext": "éa".repeat(1_000),
        "list": list, "strings": strings, "dict": dict,
    });
    object(json!({"name": "web1", "vars": vars}), Value::Null)
}

fn object(host: Value, pattern: Value) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("host".into(), host);
    object.insert("pattern".into(), pattern);
    object
}

/// Hosts whose `pattern` differs, so that every object compiles anew.
fn with_patterns(pattern: impl Fn(usize) -> String) -> Vec<Map<String, Value>> {
    (0..400).map(|i| object(json!({"name": "web1"}), json!(pattern(i)))).collect()
}

fn cases() -> Vec<Case> {
    let one = |name, filter: String| Case { name, filter, objects: vec![host()] };
    let star_literal = format!(r#"match("*{}b", host.vars.text)"#, "a".repeat(1_000));
    let dfa_states = format!(r#"match("*a{}", host.vars.ab)"#, "?".repeat(20));
    vec![
        one("instructions (0 || 0 ...)", chain("0", 12_000)),
        one("paths (host.vars.nope)", chain("host.vars.nope", 3_000)),
        one("array literals", chain("[0, 0, 0, 0, 0, 0, 0, 0] == 1", 1_800)),
        one("strings == (10 KB)", chain("host.vars.text == host.vars.text2", 200)),
        one("arrays == (1000 numbers)", chain("host.vars.list != host.vars.list", 20)),
        one("dictionaries == (1000 keys)", chain("host.vars.dict != host.vars.dict", 20)),
        one("in (1000 strings)", chain(r#""x" in host.vars.strings"#, 20)),
        one("glob, DFA scan (10 KB)", chain(r#"match("*b", host.vars.text)"#, 20)),
        one("glob, short texts (host.name)", chain(r#"match("*b", host.name)"#, 2_000)),
        one("glob, star and 1000 bytes", chain(&star_literal, 5)),
        one("glob, new DFA states (?x20)", chain(&dfa_states, 5)),
        one("regex, DFA scan (10 KB)", chain(r#"regex("[0-9]x", host.vars.text)"#, 20)),
        one("regex, \\w+ (10 KB)", chain(r#"regex("^\\w+x", host.vars.text)"#, 20)),
        one("regex, PikeVM (\\b, 2 KB)", chain(r#"regex("\\bé(?s:.){0,100}x", host.vars.etext)"#, 1)),
        Case {
            name: "compiles, small regexes",
            filter: "regex(pattern, host.name)".into(),
            objects: with_patterns(|i| format!("^a{i}$")),
        },
        Case {
            name: "compiles, regex \\w{19}",
            filter: "regex(pattern, host.name)".into(),
            objects: with_patterns(|i| format!("\\w{{19}}{i}")),
        },
        Case {
            name: "compiles, 64 KB globs of ?",
            filter: "match(pattern, host.name)".into(),
            objects: with_patterns(|i| format!("{}{i}", "?".repeat(65_000))),
        },
    ]
}
