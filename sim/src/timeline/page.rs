//! The HTML page around the picture: the scenario, the picture, the
//! violations with their evidence, and a few lines of script that link each
//! violation's line to its entry. Nothing is loaded from anywhere else.

use super::svg::esc;
use crate::oracles::Violation;
use crate::scenario::Scenario;

/// The page: a heading, the description, the picture and the evidence.
pub fn html(scenario: &Scenario, svg: &str, violations: &[&Violation]) -> String {
    let name = esc(&scenario.name);
    format!(
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{name} - quiesce timeline</title><style>{CSS}</style></head><body><h1>{name}</h1><p class=desc>{}</p>\n{svg}\n{}<script>{SCRIPT}</script></body></html>\n",
        esc(&scenario.description),
        evidence(violations)
    )
}

/// Each violation, numbered as on its line, with its evidence.
fn evidence(violations: &[&Violation]) -> String {
    if violations.is_empty() {
        return "<p class=pass>PASS: no invariant was broken.</p>".into();
    }
    let mut out = String::from(
        "<h2>Violations and their evidence</h2><p class=hint>Click a red line or an entry to highlight the other.</p><ol class=evidence>",
    );
    for (i, v) in violations.iter().enumerate() {
        let n = i + 1;
        let items: String = v.evidence.iter().map(|e| format!("<li><code>{}</code></li>", esc(e))).collect();
        out.push_str(&format!(
            "<li id=\"ev{n}\" data-v=\"{n}\"><p><b>[{n}] {}</b> at {} ms on {}: {}</p><ul>{items}</ul></li>",
            esc(&v.invariant.name()),
            v.at_ms,
            esc(&v.node),
            esc(&v.message)
        ));
    }
    out.push_str("</ol>");
    out
}

const CSS: &str = concat!(
    "body{font-family:sans-serif;margin:8px;max-width:1240px}h1{font-size:20px;margin:4px 0}",
    "h2{font-size:16px;margin:12px 0 4px}.desc{margin:4px 0 8px;color:#333}svg{display:block}",
    ".hint{color:#555;margin:2px 0}.pass{color:#070;font-weight:bold}",
    "ol.evidence{list-style:none;padding:0;margin:0}",
    "ol.evidence>li{border-left:4px solid #d00;padding:2px 8px;margin:6px 0;cursor:pointer}",
    "ol.evidence>li.hl{background:#fde8e8;border-left-color:#800}ol.evidence p{margin:2px 0}",
    "code{white-space:pre-wrap;overflow-wrap:anywhere;font-size:12px}",
);

/// Clicking a violation's line (or label) or its entry highlights both and
/// brings the other into view.
const SCRIPT: &str = concat!(
    "(function(){var all=document.querySelectorAll('[data-v]');",
    "function show(v,from){all.forEach(function(e){e.classList.toggle('hl',e.getAttribute('data-v')===v);});",
    "var other=document.getElementById((from.tagName.toLowerCase()==='li'?'vl':'ev')+v);",
    "if(other){other.scrollIntoView({block:'nearest'});}}",
    "all.forEach(function(e){e.addEventListener('click',function(){show(e.getAttribute('data-v'),e);});});})();",
);
