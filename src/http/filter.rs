//! The subset of Icinga's filter DSL that API clients use.
//!
//! Supported: attribute paths (`host.name`, `host.vars.os`), string, number,
//! boolean and null literals, array literals, `== != < <= > >= && || !`,
//! `in`, `match(glob, value)`, `regex(pattern, value)`, parentheses, and
//! variables (the object's bindings and `filter_vars`).
//!
//! Semantics, following Icinga where it is sensible:
//! - truthiness: null, false, 0, "", `[]` and `{}` are false, the rest true;
//! - `==` between different types is false, but integers and floats compare
//!   numerically (inside arrays and dictionaries JSON equality holds, so
//!   `[1] == [1.0]` is false); `<` and friends compare two numbers or two
//!   strings, any other pair is an error;
//! - a path into null or a missing key yields null, so `host.vars.os` works
//!   for a host without vars; an unknown top-level name is an error;
//! - `x in null` is false, `x in <not an array>` is an error;
//! - `match` is Icinga's glob (`*` any run of characters, `?` one character,
//!   everything else literal and case-sensitive); `regex` uses the `regex`
//!   crate's syntax and finds the pattern anywhere in the value. A value
//!   that is not a string matches neither; a pattern that is not one is an
//!   error (`regex` looks at the value first). A literal `regex` pattern's
//!   syntax is checked at parse time; a pattern whose automaton outgrows its
//!   limit (1 MiB for `regex`, as the `regex` crate's default, 16 MiB for a
//!   glob, which any glob that fits a filter stays under) is an error when
//!   first used.
//!
//! Anything else (assignment, arithmetic, other functions, lambdas,
//! dictionaries, indexers, keywords) is refused with an error that names the
//! construct.
//!
//! Hostile but valid input is bounded:
//! - a filter is at most [`MAX_LEN`] bytes and [`MAX_TERMS`] terms, and
//!   nests at most [`MAX_DEPTH`] levels, where each pair of parentheses or
//!   brackets, each function call and each `!` is a level; `&&` and `||`
//!   chains are lists, so their length costs no nesting;
//! - the parser keeps the levels it is in on a stack of its own (nom reads
//!   the tokens), evaluation runs a flat program on a stack machine, and
//!   only compiling and dropping the tree recurse, per level of nesting:
//!   no filter recurses per operand, and the deepest fits a small stack;
//! - evaluation borrows the object's attributes and `filter_vars`;
//! - every step is counted against a budget per request (`filter_budget`),
//!   before the work it pays for: one per instruction, per path key and per
//!   64 bytes compared; for `match` and `regex`, a compile (once per request
//!   and pattern, in a cache of 16 patterns) costs 1000 steps plus the
//!   sizes of the regex and of its automaton, and a match one step per 6
//!   bytes its lazy DFA scans and one per 2 NFA states of each DFA state it
//!   builds, so both run in time linear in the text. A request past its
//!   budget is refused with an error that says so ([`FilterError::Budget`]);
//! - a caller that can yield does so every [`PAUSE_STEPS`](budget::PAUSE_STEPS), as
//!   [`Run::resume`] returns to it.

pub(crate) mod budget;
mod grammar;
mod pattern;
mod program;
mod scan;
mod value;

use serde_json::{Map, Value};

pub use budget::Budget;
pub use program::Run;

use pattern::Patterns;
use program::Op;

/// Longest filter accepted, in bytes.
pub const MAX_LEN: usize = 64 * 1024;
/// Deepest nesting accepted: parentheses, brackets, calls and `!` each count.
pub const MAX_DEPTH: usize = crate::input::MAX_DEPTH;
/// Most terms (literals and attribute paths) in one filter. A selection of
/// a few thousand names (`host.name=="a"||host.name=="b"||…`) fits within
/// [`MAX_LEN`] and this; only degenerate chains such as `1||1||…` pass it.
pub const MAX_TERMS: usize = 4096;

/// Why a filter could not be parsed or evaluated. Display texts are user-facing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// Not valid filter syntax.
    #[error("syntax error at position {position}: {message}")]
    Syntax { position: usize, message: String },
    /// Valid Icinga DSL perhaps, but outside the supported subset.
    #[error("unsupported filter construct {construct} at position {position}")]
    Unsupported { construct: String, position: usize },
    /// The expression failed on this object.
    #[error("{0}")]
    Eval(String),
    /// The evaluation needed more steps than the budget allows.
    #[error(
        "the filter needs more than {limit} evaluation steps over the objects it runs over \
         (filter_budget); narrow it."
    )]
    Budget { limit: u64 },
}

/// A parsed filter, compiled to a flat program.
#[derive(Debug)]
pub struct Filter {
    ops: Vec<Op>,
}

impl Filter {
    /// Parses `src`; a syntax error or an unsupported construct is an error that names it.
    pub fn parse(src: &str) -> Result<Filter, FilterError> {
        if src.len() > MAX_LEN {
            return Err(FilterError::Syntax {
                position: MAX_LEN,
                message: format!("longer than {MAX_LEN} bytes"),
            });
        }
        scan::scan_unsupported(src)?;
        let ops = program::compile(grammar::parse(src)?)?;
        Ok(Filter { ops })
    }

    /// An evaluation at its start; [`Run::resume`] runs it in slices.
    pub fn start(&self) -> Run<'_> {
        Run::new(&self.ops)
    }

    #[cfg(test)]
    /// Evaluates in one go: the result's truthiness decides.
    pub fn matches(&self, scope: &Scope<'_>, eval: &mut Evaluator) -> Result<bool, FilterError> {
        let mut run = self.start();
        loop {
            if let Some(matched) = run.resume(scope, eval)? {
                return Ok(matched);
            }
            eval.budget.paused();
        }
    }
}

/// What a top-level name stands for.
#[derive(Debug, Clone, Copy)]
pub enum Binding<'a> {
    /// An object's attributes (`host`, `service`, `obj`).
    Attrs(&'a Map<String, Value>),
    /// Any other value (a `filter_vars` entry, an event, a status entry).
    Value(&'a Value),
}

/// The names a filter sees: the object's own, then `filter_vars`.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    names: &'a [(&'a str, Binding<'a>)],
    vars: &'a Map<String, Value>,
}

impl<'a> Scope<'a> {
    /// A scope where `names` win over `vars` of the same name.
    pub fn new(names: &'a [(&'a str, Binding<'a>)], vars: &'a Map<String, Value>) -> Scope<'a> {
        Scope { names, vars }
    }

    fn get(&self, name: &str) -> Option<Binding<'a>> {
        let own = self.names.iter().find(|(n, _)| *n == name).map(|(_, b)| *b);
        own.or_else(|| self.vars.get(name).map(Binding::Value))
    }
}

/// What one request's evaluations share: the step budget and the compiled patterns.
#[derive(Debug)]
pub struct Evaluator {
    /// The steps spent and left.
    pub budget: Budget,
    patterns: Patterns,
}

impl Evaluator {
    /// An evaluator with a budget of `limit` steps.
    pub fn new(limit: u64) -> Evaluator {
        Evaluator { budget: Budget::new(limit), patterns: Patterns::default() }
    }

    #[cfg(test)]
    /// How many `match` and `regex` patterns were compiled.
    pub fn compiles(&self) -> u64 {
        self.patterns.compiles()
    }
}

#[cfg(test)]
mod cost;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn world() -> Map<String, Value> {
        let v = json!({
            "host": {"name": "web1", "vars": {"os": "linux", "prio": 3, "tags": ["a", "b"]}, "state": 1, "groups": ["linux"]},
            "service": {"name": "http", "host_name": "web1", "state": 0, "vars": null},
            "num": 2,
            "names": ["web1", "db1"],
        });
        v.as_object().cloned().unwrap_or_default()
    }

    /// Evaluates `src` with `world` bound as variables and a budget of `limit`.
    fn eval_with(src: &str, world: &Map<String, Value>, eval: &mut Evaluator) -> Result<bool, FilterError> {
        Filter::parse(src)?.matches(&Scope::new(&[], world), eval)
    }

    fn eval(src: &str) -> Result<bool, FilterError> {
        eval_with(src, &world(), &mut Evaluator::new(u64::MAX))
    }

    fn check(src: &str) -> bool {
        eval(src).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn expressions_clients_send_evaluate_as_icinga_does() {
        let yes = [
            r#"host.name=="web1""#,
            r#"host.name == "web1" && host.vars.os == "linux""#,
            r#"match("web*", host.name)"#,
            r#"regex("^w.b[0-9]$", host.name)"#,
            "host.vars.prio > num",
            "host.vars.prio >= 3 && host.vars.prio <= 3.0",
            r#""linux" in host.groups"#,
            "host.name in names",
            r#"host.name in ["a", "web1"]"#,
            r#"!(service.host_name in ["a","b"])"#,
            "service.state != 0 || host.state == 1",
            "service.vars.missing == null",
            "host.vars.nothing.deeper == null",
            "!false && true",
            "host.state",
            r#""b" < "c""#,
            "-1 < 0",
        ];
        for src in yes {
            assert!(check(src), "{src} must match");
        }
        let no = [
            r#"host.name=="web2""#,
            r#"match("db*", host.name)"#,
            "host.vars.prio < num",
            r#""x" in host.groups"#,
            "host.vars.missing in host.vars.missing",
            "service.state",
            "!true",
            r#""""#,
            "[]",
            "0",
        ];
        for src in no {
            assert!(!check(src), "{src} must not match");
        }
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let cases = [
            ("host.name = \"x\"", "assignment"),
            ("host.vars.prio + 1 > 2", "'+'"),
            ("len(host.name) > 2", "function call 'len(...)'"),
            ("host.name.contains(\"w\")", "method call"),
            ("(x) => x", "lambda"),
            ("{ \"a\" = 1 }", "dictionary"),
            ("{{{raw}}}", "multi-line string"),
            ("var x", "keyword 'var'"),
            ("host.vars.prio * 2", "'*'"),
            ("host.name == 'web1'", "single-quoted"),
        ];
        for (src, construct) in cases {
            match Filter::parse(src) {
                Err(FilterError::Unsupported { construct: c, .. }) => {
                    assert!(c.contains(construct), "{src}: named '{c}', expected it to mention {construct}")
                }
                other => panic!("{src}: expected Unsupported({construct}), got {other:?}"),
            }
        }
    }

    #[test]
    fn syntax_errors_say_where() {
        for src in
            ["host.name ==", "(host.name == \"a\"", "match(\"a\")", "\"open", "host. name", "", "[1, 2"]
        {
            assert!(
                matches!(Filter::parse(src), Err(FilterError::Syntax { .. })),
                "{src} must be a syntax error"
            );
        }
        let e = Filter::parse("host.name == == 1").unwrap_err();
        assert!(e.to_string().contains("position"), "{e}");
    }

    #[test]
    fn evaluation_errors_are_clean() {
        let eval_err = |src: &str| eval(src).unwrap_err();
        assert!(eval_err("nosuch == 1").to_string().contains("undefined script variable 'nosuch'"));
        assert!(eval_err("host.name < 3").to_string().contains("Cannot compare"));
        assert!(eval_err("1 in host.name").to_string().contains("'in'"));
        assert!(matches!(Filter::parse(r#"regex("(", host.name)"#), Err(FilterError::Eval(_))));
    }

    #[test]
    fn hostile_input_is_bounded() {
        let deep = format!("{}true{}", "(".repeat(500), ")".repeat(500));
        assert!(Filter::parse(&deep).is_err());
        let bangs = format!("{}true", "!".repeat(500));
        assert!(Filter::parse(&bangs).is_err());
        assert!(Filter::parse(&"a".repeat(MAX_LEN + 1)).is_err());
        assert!(Filter::parse(&"1".repeat(300)).is_ok(), "a long number is just a float");
        assert!(Filter::parse(&"1".repeat(400)).is_err(), "a number beyond f64 is an error, not infinity");
    }

    /// A thread's stack as small as a filter may meet: the tests below show
    /// the deepest filter and the longest chain fit in it, in debug builds too.
    const SMALL_STACK: usize = 256 * 1024;

    #[expect(
        clippy::disallowed_methods,
        reason = "a test thread, for its stack size; no simulation runs here"
    )]
    fn on_small_stack<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        let thread = std::thread::Builder::new().stack_size(SMALL_STACK).spawn(work);
        thread.expect("thread starts").join().expect("no panic")
    }

    /// One filter per construct that nests, each exactly `levels` deep.
    fn nested(levels: usize) -> Vec<String> {
        let wrap = |open: &str, inner: &str, close: &str, reps: usize| {
            format!("{}{inner}{}", open.repeat(reps), close.repeat(reps))
        };
        vec![
            wrap("(", "true", ")", levels),
            wrap("!", "true", "", levels),
            wrap("[", "true", "]", levels),
            wrap("match(\"*\", ", "host.name", ")", levels),
            // Two levels per repetition: a call and an array, `!` and a parenthesis.
            wrap("regex(host.name, [", "1", "])", levels / 2),
            wrap("(1 == 2 || !", "host.name", ")", levels / 2),
            wrap("[!", "true", "]", levels / 2),
        ]
    }

    #[test]
    fn the_deepest_filters_parse_evaluate_and_drop_on_a_small_stack() {
        on_small_stack(|| {
            for src in nested(MAX_DEPTH) {
                let filter = Filter::parse(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
                let scope_world = world();
                let result = filter.matches(&Scope::new(&[], &scope_world), &mut Evaluator::new(u64::MAX));
                assert!(!matches!(result, Err(FilterError::Budget { .. })), "{src}: {result:?}");
                drop(filter);
            }
        });
    }

    #[test]
    fn one_level_more_is_refused_with_the_limit_named() {
        for src in nested(MAX_DEPTH + 2) {
            match Filter::parse(&src) {
                Err(FilterError::Syntax { message, .. }) => {
                    assert_eq!(message, "nested deeper than 32 levels", "{src}")
                }
                other => panic!("{src}: {other:?}"),
            }
        }
        let just_over = format!("{}true{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        assert!(Filter::parse(&just_over).is_err());
    }

    // Scenario: a user with only `objects/query/*` posts `1||1||...||1`, 60 KB.
    // Bug: the chain was folded into nested boxes; parsing, evaluating and
    //      dropping recursed once per operand and overflowed a worker's stack,
    //      aborting the process.
    // Fix: chains are lists and evaluation runs a flat program; a filter has
    //      at most MAX_TERMS terms, which the degenerate 60 KB chain passes.
    #[test]
    fn a_60_kb_chain_is_refused_and_the_longest_allowed_runs_on_a_small_stack() {
        let degenerate = vec!["1"; 60 * 1024 / 3].join("||");
        match Filter::parse(&degenerate) {
            Err(FilterError::Syntax { message, .. }) => assert_eq!(message, "more than 4096 terms"),
            other => panic!("{other:?}"),
        }
        on_small_stack(|| {
            for op in ["||", "&&"] {
                let src = vec!["host.vars.os"; MAX_TERMS].join(op);
                assert!(src.len() > 50_000 && src.len() <= MAX_LEN);
                assert!(eval(&src).is_ok(), "{op}");
            }
            let mixed: Vec<&str> =
                (0..MAX_TERMS - 1).map(|i| if i % 2 == 0 { "1 ||" } else { "!0 &&" }).collect();
            assert_eq!(eval(&format!("{} 0", mixed.join(" "))), Ok(true));
            let falsy = vec!["0"; MAX_TERMS].join("||");
            assert_eq!(eval(&falsy), Ok(false), "every operand is evaluated, none short-circuits");
        });
    }

    #[test]
    fn a_filter_past_its_budget_is_refused_and_says_so() {
        let src = vec!["host.name == \"x\""; 100].join(" || ");
        let mut eval = Evaluator::new(200);
        let err = eval_with(&src, &world(), &mut eval).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the filter needs more than 200 evaluation steps over the objects it runs over (filter_budget); narrow it."
        );
        assert!(
            eval_with(&src, &world(), &mut Evaluator::new(2_000)).is_ok(),
            "the same filter within a larger budget"
        );
    }

    #[test]
    fn bytes_compared_are_charged() {
        let text = "a".repeat(64_000);
        let world = json!({"a": text, "b": text}).as_object().cloned().unwrap_or_default();
        let spent = |src: &str| {
            let mut eval = Evaluator::new(u64::MAX);
            assert_eq!(eval_with(src, &world, &mut eval), Ok(true), "{src}");
            eval.budget.spent()
        };
        assert!(spent("a == b") >= 1_000, "64 KB compared is a thousand steps");
        assert!(spent("[a, [a]] == [b, [b]]") >= 2_000, "inside arrays too");
        assert!(spent("1 == 1") < 10);
    }

    /// A world with one long text of `a`s.
    fn long_world(len: usize) -> Map<String, Value> {
        json!({"host": {"vars": {"long": "a".repeat(len)}}}).as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn globs_match_in_steps_linear_in_the_text() {
        let len = 100_000;
        let world = long_world(len);
        // The glob of the report: a lazy DFA scans the text once.
        let mut eval = Evaluator::new(len as u64);
        assert_eq!(eval_with(r#"match("*a*a*a*a*a*b", host.vars.long)"#, &world, &mut eval), Ok(false));
        assert_eq!(eval_with(r#"match("*a*a*a*a*a*", host.vars.long)"#, &world, &mut eval), Ok(true));
        // A star and a long literal: the previous matcher went back to the
        // star at every mismatch, about `k` steps per byte of text.
        let k = 1_000;
        let backtracking_steps = (len - k) * k;
        let budget = (backtracking_steps / 100) as u64;
        let mut eval = Evaluator::new(budget);
        let src = format!(r#"match("*{}b", host.vars.long)"#, "a".repeat(k));
        assert_eq!(eval_with(&src, &world, &mut eval), Ok(false), "within a hundredth of the steps");
    }

    // Scenario: `match("*http*", service.name)` over a large installation.
    // Bug: every match paid for its start and end DFA states, which are built
    //      once: about 270 steps per object, so 100 000 services needed 27 M
    //      steps and the filter was refused.
    // Fix: a DFA state is charged when it is built.
    #[test]
    fn an_ordinary_glob_costs_a_few_steps_per_object() {
        let filter = Filter::parse(r#"match("*http*", service.name)"#).unwrap();
        let services: Vec<Map<String, Value>> = (0..1_000)
            .map(|i| {
                json!({"service": {"name": format!("web{i}!http-{i}")}})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let mut eval = Evaluator::new(u64::MAX);
        for service in &services {
            assert_eq!(filter.matches(&Scope::new(&[], service), &mut eval), Ok(true));
        }
        let per_object = eval.budget.spent() / 1_000;
        assert!(per_object < 30, "{per_object} steps per object");
    }

    #[test]
    fn a_pattern_is_compiled_once_per_request() {
        let world = world();
        let with_var = |pattern: &str| {
            let mut w = world.clone();
            w.insert("pattern".into(), json!(pattern));
            w
        };
        for (src, kind) in [("regex(pattern, host.name)", "regex"), ("match(pattern, host.name)", "match")] {
            let w = with_var(if kind == "regex" { "^w.b[0-9]$" } else { "w*" });
            let filter = Filter::parse(src).unwrap();
            let mut eval = Evaluator::new(u64::MAX);
            for _ in 0..1_000 {
                assert_eq!(filter.matches(&Scope::new(&[], &w), &mut eval), Ok(true), "{src}");
            }
            assert_eq!(eval.compiles(), 1, "{src}: a non-literal pattern, compiled once for 1000 objects");
        }
        // Used in turn, patterns the cache holds are compiled once; more than
        // it holds are compiled again each time (the least recently used
        // goes first), and charged again.
        let filter = Filter::parse("regex(pattern, host.name)").unwrap();
        for (patterns, compiles_per_round) in [(10, [10, 0]), (40, [40, 40])] {
            let mut eval = Evaluator::new(u64::MAX);
            for per_round in compiles_per_round {
                let before = eval.compiles();
                for i in 0..patterns {
                    let w = with_var(&format!("^w{i}|web"));
                    assert_eq!(filter.matches(&Scope::new(&[], &w), &mut eval), Ok(true));
                }
                assert_eq!(eval.compiles() - before, per_round, "{patterns} patterns");
            }
        }
    }

    #[test]
    fn a_huge_compiled_pattern_is_an_error_not_a_crash() {
        let err = eval(r#"regex("\\w{1000}", host.name)"#).unwrap_err();
        assert!(err.to_string().contains("exceeds size limit"), "{err}");
        assert!(err.to_string().starts_with("invalid regular expression"), "{err}");
        let glob = "?".repeat(MAX_LEN - 40);
        let src = format!(r#"match("{glob}", host.name)"#);
        assert_eq!(eval(&src), Ok(false), "any glob that fits a filter compiles");
    }

    #[test]
    fn a_unicode_word_boundary_beside_non_ascii_text_still_matches() {
        // The lazy DFA quits there; the PikeVM answers.
        let world = json!({"t": "été ici", "u": "a b"}).as_object().cloned().unwrap_or_default();
        let mut eval = Evaluator::new(u64::MAX);
        assert_eq!(eval_with(r#"regex("\\bici\\b", t)"#, &world, &mut eval), Ok(true));
        assert_eq!(eval_with(r#"regex("\\bét\\b", t)"#, &world, &mut eval), Ok(false));
        assert_eq!(eval_with(r#"regex("\\bb\\b", u)"#, &world, &mut eval), Ok(true));
    }

    /// Openers of every kind that nests, with their closers and the levels
    /// they count. Each starts with what nests, so a `!` before it covers it.
    const OPENERS: [(&str, &str, usize); 6] = [
        ("(", ")", 1),
        ("[", "]", 1),
        ("!", "", 1),
        ("match(\"*\", ", ")", 1),
        ("regex(host.name, [", "])", 2),
        ("(1 == 2 || !(", "))", 3),
    ];

    /// A filter nested by the openers picked, and its depth.
    fn nest(kinds: &[usize], leaf: &str) -> (String, usize) {
        let (mut open, mut close, mut depth) = (String::new(), Vec::new(), 0);
        for &k in kinds {
            let (o, c, levels) = OPENERS[k % OPENERS.len()];
            open.push_str(o);
            close.push(c);
            depth += levels;
        }
        close.reverse();
        (format!("{open}{leaf}{}", close.concat()), depth)
    }

    /// Filters a hostile client might send: bytes of any kind, deep nesting,
    /// long chains, huge numbers, and the grammar's tokens in any order.
    fn hostile() -> impl Strategy<Value = String> {
        use proptest::collection::vec;
        let chain = (0usize..2, 0usize..25_000, "1|0|host\\.name|\"a\"|!1")
            .prop_map(|(op, n, operand)| vec![operand; n + 1].join(["||", "&&"][op]));
        prop_oneof![
            vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            (vec(0usize..6, 0..60), "1|host|\"a\"|\\[\\]").prop_map(|(k, leaf)| nest(&k, &leaf).0),
            chain,
            "-?[0-9]{1,400}(\\.[0-9]{0,40})?([eE][+-]?[0-9]{1,6})?",
            "([()\\[\\],!\" a-z0-9.]|==|&&|\\|\\||match\\(|regex\\(| in ){0,100}",
        ]
    }

    #[test]
    fn hostile_filters_never_panic_or_overflow_a_small_stack() {
        on_small_stack(|| {
            let config = proptest::test_runner::Config { cases: 300, ..Default::default() };
            let mut runner = proptest::test_runner::TestRunner::new(config);
            let world = world();
            let outcome = runner.run(&hostile(), |src| {
                let _ = eval_with(&src, &world, &mut Evaluator::new(1_000_000));
                Ok(())
            });
            outcome.map_err(|e| e.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }

    proptest::proptest! {
        #[test]
        fn nesting_is_accepted_up_to_the_limit_and_no_further(
            kinds in proptest::collection::vec(0usize..6, 0..40),
            leaf in "1|host\\.name|\"a\"",
        ) {
            let (src, depth) = nest(&kinds, &leaf);
            let parsed = Filter::parse(&src);
            proptest::prop_assert_eq!(parsed.is_ok(), depth <= MAX_DEPTH, "{} (depth {}): {:?}", src, depth, parsed);
        }

        #[test]
        fn parse_and_match_never_panic(src in "\\PC{0,80}") {
            let _ = eval(&src);
        }

        #[test]
        fn grammar_shaped_input_never_panics(src in "[a-z.\"()!=<>&| \\[\\],0-9]{0,60}") {
            let _ = eval(&src);
        }
    }
}
