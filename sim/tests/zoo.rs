//! The zoo's scenarios, measured: every `scenarios/zoo-<bug>.json` breaks one
//! of its bug's own targets with the bug on, and passes with it off (its
//! control), so a zoo scenario cannot pass for the wrong reason.

use quiesce::bugs::Bug;
use quiesce_sim::zoo::{check_scenario, name, scenarios_dir, targets};

#[test]
fn every_zoo_scenario_breaks_its_targets_and_its_control_passes() {
    let mut wrong = Vec::new();
    for bug in Bug::ALL {
        match check_scenario(&scenarios_dir(), bug) {
            Ok(c) if c.holds() => {}
            Ok(c) => wrong.push(format!(
                "{}: must break one of {:?} with the bug on (broke: {:?}) and pass with it off (broke: {:?})",
                name(bug),
                targets(bug),
                c.on,
                c.control
            )),
            Err(e) => wrong.push(format!("{}: {e}", name(bug))),
        }
    }
    assert!(wrong.is_empty(), "zoo scenarios that do not measure their bug:\n{}", wrong.join("\n"));
}
