//! `match(glob, value)` and `regex(pattern, value)`: each pattern is compiled
//! once per request into a bounded cache, and matched by a lazy DFA that this
//! module drives byte by byte, so that every byte scanned and every DFA state
//! built is charged to the budget before it is done. A glob becomes an
//! anchored regex, so both run in time linear in the text.

use std::borrow::Cow;
use std::collections::BTreeMap;

use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::nfa::thompson::pikevm::{Cache as VmCache, PikeVM};
use regex_automata::nfa::thompson::{self, WhichCaptures, NFA};
use regex_automata::Input;
use regex_syntax::hir::Hir;

use super::budget::{text_steps, Budget};
use super::FilterError;

/// Which function a pattern is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    /// `match`: Icinga's glob, `*` and `?`.
    Glob,
    /// `regex`: the `regex` crate's syntax, found anywhere in the text.
    Regex,
}

/// Largest compiled `regex()` pattern: the `regex` crate's default, as before.
const REGEX_NFA_BYTES: usize = 1 << 20;
/// Largest compiled glob: room for any glob of `MAX_LEN` bytes (64 K of `?`
/// compile to 5.7 MB, and the compiler counts more while it builds), so
/// none that fits a filter fails.
const GLOB_NFA_BYTES: usize = 16 << 20;
/// Memory for the DFA states of one pattern; when it is full, states are
/// dropped and built again (and charged again).
const DFA_STATE_BYTES: usize = 1 << 20;
/// Most patterns kept compiled per request, and most memory they may hold;
/// past either, the least recently used goes.
const MAX_PATTERNS: usize = 16;
const MAX_PATTERN_BYTES: usize = 32 << 20;

/// Steps a compile costs before it starts, beside one per byte of the
/// regex it parses and one per compiled bytes below.
const COMPILE_STEPS: u64 = 1_000;
/// Bytes of compiled automaton per step, charged once it is built.
const COMPILED_BYTES_PER_STEP: usize = 1;
/// Bytes of text per step that the DFA scans along states it has built.
const SCAN_BYTES_PER_STEP: usize = 6;
/// NFA states per step, when building a DFA state or when the PikeVM takes
/// a byte: both may visit every state of the NFA.
const NFA_STATES_PER_STEP: usize = 2;
/// Bytes scanned between two charges.
const SCAN_CHUNK: usize = 4096;

/// The compiled patterns of one request, by kind and source.
#[derive(Debug, Default)]
pub(super) struct Patterns {
    kept: [BTreeMap<String, Matcher>; 2],
    /// Lookups so far: each matcher remembers its last one.
    lookups: u64,
    memory: usize,
    compiles: u64,
}

impl Patterns {
    /// Whether `pattern` matches `text`, compiling it on first use.
    pub(super) fn is_match(
        &mut self,
        kind: Kind,
        pattern: &str,
        text: &str,
        budget: &mut Budget,
    ) -> Result<bool, FilterError> {
        // A lookup compares the pattern with a few kept ones, each perhaps whole.
        budget.charge(4 * text_steps(pattern.len()))?;
        self.lookups += 1;
        if let Some(matcher) = self.kept[kind as usize].get_mut(pattern) {
            matcher.used = self.lookups;
            return matcher.is_match(text.as_bytes(), budget);
        }
        let mut matcher = Matcher::compile(kind, pattern, budget)?;
        self.compiles += 1;
        matcher.used = self.lookups;
        let found = matcher.is_match(text.as_bytes(), budget);
        self.keep(kind, pattern, matcher);
        found
    }

    #[cfg(test)]
    /// How many patterns were compiled.
    pub(super) fn compiles(&self) -> u64 {
        self.compiles
    }

    fn keep(&mut self, kind: Kind, pattern: &str, matcher: Matcher) {
        while self.len() >= MAX_PATTERNS
            || (self.len() > 0 && self.memory + matcher.memory > MAX_PATTERN_BYTES)
        {
            self.drop_least_recent();
        }
        self.memory += matcher.memory;
        self.kept[kind as usize].insert(pattern.to_string(), matcher);
    }

    fn len(&self) -> usize {
        self.kept.iter().map(BTreeMap::len).sum()
    }

    fn drop_least_recent(&mut self) {
        let oldest = self
            .kept
            .iter()
            .enumerate()
            .flat_map(|(kind, kept)| kept.iter().map(move |(pattern, m)| (m.used, kind, pattern)))
            .min_by_key(|(used, ..)| *used)
            .map(|(_, kind, pattern)| (kind, pattern.clone()));
        if let Some(matcher) = oldest.and_then(|(kind, pattern)| self.kept[kind].remove(&pattern)) {
            self.memory -= matcher.memory;
        }
    }
}

/// Checks a `regex()` pattern's syntax, as the parser does for a literal one.
pub(super) fn check_regex(pattern: &str) -> Result<(), FilterError> {
    parse(Kind::Regex, pattern, pattern).map(drop)
}

/// The regex a pattern stands for.
fn source(kind: Kind, pattern: &str) -> Cow<'_, str> {
    match kind {
        Kind::Glob => Cow::Owned(glob_regex(pattern)),
        Kind::Regex => Cow::Borrowed(pattern),
    }
}

fn parse(kind: Kind, pattern: &str, source: &str) -> Result<Hir, FilterError> {
    // A glob matches bytes between characters (see `glob_regex`); a regex does not.
    let mut parser = regex_syntax::ParserBuilder::new().utf8(kind == Kind::Regex).build();
    parser.parse(source).map_err(|e| invalid(kind, pattern, &e))
}

fn invalid(kind: Kind, pattern: &str, why: &dyn std::fmt::Display) -> FilterError {
    match kind {
        Kind::Glob => FilterError::Eval(format!("match(): the pattern is too long: {why}")),
        Kind::Regex => FilterError::Eval(format!("invalid regular expression '{pattern}': {why}")),
    }
}

/// Icinga's glob as an anchored regex: `*` is any run of bytes, `?` one
/// character (a lead byte and its continuation bytes), the rest literal.
/// The text is valid UTF-8 and every other piece starts at a character, so
/// a `*` can only end between characters: the glob's meaning is unchanged,
/// and the automaton stays small (no UTF-8 decoder per wildcard). A run of
/// `?` is one counted repetition, so the regex stays short to parse.
fn glob_regex(glob: &str) -> String {
    let mut out = String::from("(?s)^");
    let mut chars = glob.chars().peekable();
    while let Some(c) = chars.next() {
        let mut run = 1;
        while chars.next_if_eq(&c).is_some() {
            run += 1;
        }
        match c {
            '*' => out.push_str("(?-u:.)*"),
            '?' => out.push_str(&format!(r"(?-u:[\x00-\x7F\xC0-\xFF][\x80-\xBF]*){{{run}}}")),
            c => {
                for _ in 0..run {
                    regex_syntax::escape_into(c.encode_utf8(&mut [0; 4]), &mut out);
                }
            }
        }
    }
    out.push('$');
    out
}

/// One compiled pattern: a lazy DFA, and the PikeVM for the texts on which
/// the DFA quits (a Unicode word boundary beside non-ASCII text).
#[derive(Debug)]
struct Matcher {
    dfa: DFA,
    dfa_cache: DfaCache,
    vm: PikeVM,
    vm_cache: VmCache,
    /// Steps to build one DFA state: its NFA states and its row of 256
    /// transitions.
    state_steps: u64,
    /// Steps for the PikeVM to take one byte: every NFA state, at worst.
    vm_byte_steps: u64,
    /// Bytes held, about: the NFA, the DFA's states, the PikeVM's cache.
    memory: usize,
    /// The lookup that last used it.
    used: u64,
}

impl Matcher {
    fn compile(kind: Kind, pattern: &str, budget: &mut Budget) -> Result<Matcher, FilterError> {
        let source = source(kind, pattern);
        budget.charge(COMPILE_STEPS + source.len() as u64)?;
        let nfa = compile_nfa(kind, pattern, &source)?;
        budget.charge((nfa.memory_usage() / COMPILED_BYTES_PER_STEP) as u64)?;
        let config = DFA::config()
            .cache_capacity(DFA_STATE_BYTES)
            .skip_cache_capacity_check(true)
            .unicode_word_boundary(true);
        let dfa = DFA::builder().configure(config).build_from_nfa(nfa.clone());
        let dfa = dfa.map_err(|e| invalid(kind, pattern, &e))?;
        let vm = PikeVM::new_from_nfa(nfa.clone()).map_err(|e| invalid(kind, pattern, &e))?;
        let states = nfa.states().len();
        let state_steps = (states + 256).div_ceil(NFA_STATES_PER_STEP) as u64;
        let vm_byte_steps = states.div_ceil(NFA_STATES_PER_STEP) as u64;
        let vm_cache = vm.create_cache();
        let memory = nfa.memory_usage() + DFA_STATE_BYTES + vm_cache.memory_usage();
        let dfa_cache = dfa.create_cache();
        Ok(Matcher { dfa, dfa_cache, vm, vm_cache, state_steps, vm_byte_steps, memory, used: 0 })
    }

    fn is_match(&mut self, text: &[u8], budget: &mut Budget) -> Result<bool, FilterError> {
        match self.scan(text, budget)? {
            Some(found) => Ok(found),
            None => {
                budget.charge(self.vm_byte_steps.saturating_mul(text.len() as u64 + 1))?;
                Ok(self.vm.is_match(&mut self.vm_cache, Input::new(text)))
            }
        }
    }

    /// Runs the lazy DFA over `text`; `None` if it quits.
    fn scan(&mut self, text: &[u8], budget: &mut Budget) -> Result<Option<bool>, FilterError> {
        let mark = self.cache_mark();
        let start = self.dfa.start_state_forward(&mut self.dfa_cache, &Input::new(text));
        self.charge_if_built(mark, budget)?;
        let Ok(mut state) = start else { return Ok(None) };
        if state.is_tagged() {
            // A start state may be dead; `next` needs an untagged one.
            return Ok(verdict(state));
        }
        for chunk in text.chunks(SCAN_CHUNK) {
            budget.charge(chunk.len().div_ceil(SCAN_BYTES_PER_STEP) as u64)?;
            for &byte in chunk {
                let Some(next) = self.next(state, byte, budget)? else { return Ok(None) };
                if next.is_tagged() {
                    return Ok(verdict(next));
                }
                state = next;
            }
        }
        let mark = self.cache_mark();
        let end = self.dfa.next_eoi_state(&mut self.dfa_cache, state);
        self.charge_if_built(mark, budget)?;
        Ok(end.ok().and_then(verdict))
    }

    /// What tells whether the DFA built a state: its cache's size and clears.
    fn cache_mark(&self) -> (usize, usize) {
        (self.dfa_cache.memory_usage(), self.dfa_cache.clear_count())
    }

    /// Charges one state if the DFA built one since `mark` (the start and
    /// end transitions cannot be looked at before; one state is little).
    fn charge_if_built(&self, mark: (usize, usize), budget: &mut Budget) -> Result<(), FilterError> {
        if self.cache_mark() != mark {
            budget.charge(self.state_steps)?;
        }
        Ok(())
    }

    /// The state after `byte`, built (and charged) if it is new; `None` if
    /// the DFA gives up.
    fn next(
        &mut self,
        state: LazyStateID,
        byte: u8,
        budget: &mut Budget,
    ) -> Result<Option<LazyStateID>, FilterError> {
        let known = self.dfa.next_state_untagged(&self.dfa_cache, state, byte);
        if !known.is_unknown() {
            return Ok(Some(known));
        }
        budget.charge(self.state_steps)?;
        Ok(self.dfa.next_state(&mut self.dfa_cache, state, byte).ok())
    }
}

/// What a tagged state says: matched, cannot match, or the DFA quit.
fn verdict(state: LazyStateID) -> Option<bool> {
    if state.is_quit() {
        return None;
    }
    Some(state.is_match())
}

fn compile_nfa(kind: Kind, pattern: &str, source: &str) -> Result<NFA, FilterError> {
    let hir = parse(kind, pattern, source)?;
    let limit = match kind {
        Kind::Glob => GLOB_NFA_BYTES,
        Kind::Regex => REGEX_NFA_BYTES,
    };
    let config = thompson::Config::new().nfa_size_limit(Some(limit)).which_captures(WhichCaptures::None);
    thompson::Compiler::new().configure(config).build_from_hir(&hir).map_err(|e| match e.size_limit() {
        Some(limit) => {
            invalid(kind, pattern, &format!("Compiled regex exceeds size limit of {limit} bytes."))
        }
        None => invalid(kind, pattern, &e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(pattern: &str, text: &str) -> bool {
        let mut budget = Budget::new(u64::MAX);
        Patterns::default().is_match(Kind::Glob, pattern, text, &mut budget).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn globs_mean_what_icinga_means() {
        let yes = [
            ("", ""),
            ("*", ""),
            ("**", "abc"),
            ("a*c", "abbbc"),
            ("?", "é"),
            ("???", "aéb"),
            ("*é?", "xxéé"),
            ("a.b", "a.b"),
            ("[ab]", "[ab]"),
            ("\\d+$^", "\\d+$^"),
            ("*a*a*a*b", "aaab"),
            ("??*", "ab"),
        ];
        for (pattern, text) in yes {
            assert!(glob(pattern, text), "{pattern} must match {text:?}");
        }
        let no = [
            ("", "a"),
            ("?", ""),
            ("?", "éé"),
            ("??", "é"),
            ("a.b", "axb"),
            ("[ab]", "a"),
            ("A*", "abc"),
            ("*é?", "é"),
            ("??*", "é"),
            ("a*", "ba"),
        ];
        for (pattern, text) in no {
            assert!(!glob(pattern, text), "{pattern} must not match {text:?}");
        }
    }

    #[test]
    fn a_regex_that_can_match_nothing_says_no() {
        let mut budget = Budget::new(u64::MAX);
        let mut patterns = Patterns::default();
        for pattern in [r"[^\s\S]", r"a[^\s\S]", r"\bé[^\s\S]"] {
            for text in ["", "a", "é a"] {
                let found = patterns.is_match(Kind::Regex, pattern, text, &mut budget);
                assert_eq!(found, Ok(false), "{pattern} in {text:?}");
            }
        }
    }

    #[test]
    fn a_run_of_question_marks_is_one_counted_repetition() {
        assert_eq!(glob_regex("a???*"), r"(?s)^a(?-u:[\x00-\x7F\xC0-\xFF][\x80-\xBF]*){3}(?-u:.)*$");
        assert!(glob(&"?".repeat(300), &"é".repeat(300)));
        assert!(!glob(&"?".repeat(300), &"é".repeat(299)));
    }
}
