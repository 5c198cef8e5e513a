//! The project's conventions, checked by iterating the closed sets they are
//! about, so that adding a planted bug, an invariant or a chaos point
//! without what goes with it fails here:
//! - every `ALL` list (bugs, invariants, points) names every variant once;
//! - every planted bug has `scenarios/zoo-<bug>.json`, which switches it on
//!   and expects a failure (`tests/scenarios.rs` replays it);
//! - every chaos point is in `scenarios/POINTS.md`, and the scenario format's
//!   docs name every point and every invariant.
//!
//! That every invariant has a run that makes it fire is held by
//! `tests/oracles_fire.rs`, whose table the compiler keeps complete.

use std::path::{Path, PathBuf};

use quiesce::bugs::Bug;
use quiesce::env::Point;
use quiesce_sim::{Expect, Invariant, Scenario};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Serialize;

/// The names of an enum's variants as its derived `Deserialize` has them:
/// taken from the enum's definition, not from a list someone keeps.
fn variant_names<T: DeserializeOwned>() -> Vec<String> {
    let mut names = None;
    let _ = T::deserialize(VariantNames(&mut names));
    names.unwrap_or_default().iter().map(|n| n.to_string()).collect()
}

/// A deserializer that only records the variant names an enum asks for.
struct VariantNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for VariantNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not an enum"))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(variants);
        Err(de::Error::custom("only the variant names were wanted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// The name serde writes for a value (`accept-loop-after-close`, `http.before_gate`).
fn name_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn assert_lists_every_variant_once<T: Serialize + DeserializeOwned>(all: &[T], what: &str) {
    let variants = variant_names::<T>();
    assert!(!variants.is_empty(), "{what} is not an enum serde can name");
    let listed = all.iter().map(name_of).collect();
    assert_eq!(sorted(listed), sorted(variants), "{what}::ALL must list every variant once");
}

#[test]
fn every_all_list_names_every_variant_once() {
    assert_lists_every_variant_once(&Bug::ALL, "Bug");
    assert_lists_every_variant_once(&Invariant::ALL, "Invariant");
    assert_lists_every_variant_once(&Point::ALL, "Point");
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_planted_bug_has_a_zoo_scenario_that_switches_it_on_and_expects_a_failure() {
    let mut wrong = Vec::new();
    for bug in Bug::ALL {
        let name = format!("zoo-{}", name_of(&bug));
        let path = repo().join("scenarios").join(format!("{name}.json"));
        match Scenario::load(&path) {
            Err(e) => wrong.push(format!("{bug:?}: {e}")),
            Ok(s) if s.name != name => {
                wrong.push(format!("{bug:?}: {} is named '{}'", path.display(), s.name))
            }
            Ok(s) if !s.bugs.contains(&bug) => {
                wrong.push(format!("{bug:?}: {name}.json does not switch it on"))
            }
            Ok(s) if s.expect == Expect::Pass => wrong.push(format!("{bug:?}: {name}.json expects a pass")),
            Ok(_) => {}
        }
    }
    assert!(wrong.is_empty(), "planted bugs without a zoo scenario:\n{}", wrong.join("\n"));
}

#[test]
fn every_zoo_scenario_is_for_a_planted_bug() {
    let bugs: Vec<String> = Bug::ALL.iter().map(name_of).collect();
    let dir = repo().join("scenarios");
    let mut strays = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("scenarios/ exists") {
        let file = entry.expect("a directory entry").file_name().to_string_lossy().into_owned();
        let Some(bug) = file.strip_prefix("zoo-").and_then(|f| f.strip_suffix(".json")) else { continue };
        if !bugs.iter().any(|b| b == bug) {
            strays.push(file);
        }
    }
    assert!(strays.is_empty(), "zoo scenarios for no planted bug: {strays:?}");
}

/// The first cell of each row of the markdown table in `text`, if it is code.
fn table_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn the_chaos_point_table_lists_every_point_and_nothing_else() {
    let table = table_names(&read("scenarios/POINTS.md"));
    let points = Point::ALL.iter().map(|p| p.name().to_string()).collect();
    assert_eq!(sorted(table), sorted(points), "scenarios/POINTS.md must have one row per env::Point");
}

#[test]
fn the_scenario_format_docs_name_every_point_and_every_invariant() {
    let docs = read("scenarios/README.md");
    let points = Point::ALL.iter().map(|p| p.name().to_string());
    let invariants = Invariant::ALL.iter().map(|i| i.name());
    let missing: Vec<String> =
        points.chain(invariants).filter(|n| !docs.contains(&format!("`{n}`"))).collect();
    assert!(missing.is_empty(), "scenarios/README.md does not name {missing:?}");
}
