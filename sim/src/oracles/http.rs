//! Oracle 5, responses-tell-the-truth: what a response says was done is what
//! the journal shows was done, and the overall status follows the contract.

use std::collections::BTreeSet;

use super::{Invariant, Violation};
use crate::record::{Outcome, RequestRecord, RunRecord};

/// The overall status contract section 4 requires for per-object codes.
pub fn expected_overall(codes: &[u16]) -> Option<u16> {
    let failing: BTreeSet<u16> = codes.iter().copied().filter(|c| !(200..300).contains(c)).collect();
    match failing.len() {
        _ if codes.is_empty() => None,
        0 => Some(200),
        1 => failing.first().copied(),
        _ => Some(500),
    }
}

/// 5. Every modifying response agrees with the journal.
pub fn responses_tell_the_truth(record: &RunRecord) -> Vec<Violation> {
    let mutated: BTreeSet<(String, String)> = record
        .nodes
        .values()
        .flatten()
        .flat_map(|inc| inc.journal.iter())
        // An attempt after the seal was refused: it changed nothing.
        .filter(|e| !e.after_seal)
        .flat_map(|e| match &e.origin {
            quiesce::store::Origin::Http { request_id: Some(id), .. } => {
                credited(e).into_iter().map(|name| (id.clone(), name)).collect()
            }
            _ => vec![],
        })
        .collect();
    record.requests.iter().filter(|r| r.modifying).flat_map(|r| check_request(r, &mutated)).collect()
}

/// The objects a journal entry changed: the object itself, and for a
/// comment (`<checkable>!<n>`) also the checkable it belongs to, which is
/// the object a remove-comment request names.
fn credited(e: &quiesce::store::JournalEntry) -> Vec<String> {
    let owner = match e.otype {
        quiesce::store::ObjectType::Comment => e.name.rsplit_once('!').map(|(owner, _)| owner.to_string()),
        _ => None,
    };
    std::iter::once(e.name.clone()).chain(owner).collect()
}

fn check_request(r: &RequestRecord, mutated: &BTreeSet<(String, String)>) -> Vec<Violation> {
    let Outcome::Response { status, at_ms, results, text } = &r.outcome else { return vec![] };
    let changed = |name: &str| mutated.contains(&(r.id.clone(), name.to_string()));
    let mut out = Vec::new();
    let mut fail = |message: String| {
        out.push(Violation {
            invariant: Invariant::ResponsesTellTheTruth,
            at_ms: *at_ms,
            node: r.node.clone(),
            message,
            evidence: vec![format!(
                "request {} {} {} -> {status} {text} {results:?}",
                r.id, r.method, r.path
            )],
        })
    };
    if results.is_empty() {
        let touched: Vec<&String> = r.objects.iter().filter(|o| changed(o)).collect();
        if *status == 503 && !touched.is_empty() {
            fail(format!("a request refused with 503 must change nothing; it changed {touched:?}"));
        }
        return out;
    }
    for (name, code) in results {
        if *code == 200 && !r.vacuous_success && !changed(name) {
            fail(format!("object '{name}' was reported done (200) but the journal has no change for it"));
        }
        if *code == 503 && changed(name) {
            fail(format!("object '{name}' was reported skipped (503) but the journal shows it changed"));
        }
    }
    let codes: Vec<u16> = results.iter().map(|(_, c)| *c).collect();
    if let Some(expected) = expected_overall(&codes).filter(|e| e != status) {
        fail(format!(
            "the overall status must be {expected} for per-object codes {codes:?}; it was {status}"
        ));
    }
    out
}
