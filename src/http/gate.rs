//! The work-group gate of modifying handlers (contract section 3, step 5):
//! enter before mutating, re-check before each object, release at the first
//! skip, and release before the response body is written.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::bug;
use crate::env::{Env, Point};
use crate::probe::Probe;
use crate::work::{Admission, WorkGuard};

use serde_json::Value;

use super::handlers::Ctx;
use super::response::{object_result, ApiError, Reply};
use crate::store::Object;

/// The gate of one modifying request.
pub struct Gate {
    guard: Option<WorkGuard>,
    per_object: bool,
    skipping: bool,
    hold_while_writing: bool,
}

impl Gate {
    /// Enters the work group, or answers `503 Shutting down.` if Stop has
    /// begun. With `bypass` (a planted bug) the group is not consulted at
    /// all: the admission is forged.
    pub async fn enter<E: Env>(ctx: &Ctx<'_, E>, bypass: bool) -> Result<Gate, ApiError> {
        let shared = ctx.shared;
        shared.env().point(Point::HttpBeforeGate).await;
        if bypass {
            return Ok(Gate::bypassed());
        }
        let work = ctx.work_label();
        let Some(guard) = shared.admit_work() else {
            shared.env().probe(|| Probe::GateRefused { work });
            return Err(ApiError::new(503, "Shutting down."));
        };
        shared.env().probe(|| Probe::GateEntered { work: work.clone() });
        let env = shared.env().clone();
        let guard = WorkGuard::new(guard, move |finished| {
            env.probe(|| if finished { Probe::GateReleased { work } } else { Probe::WorkTorn { work } })
        });
        shared.env().point(Point::HttpAfterGate).await;
        Ok(Gate {
            guard: Some(guard),
            per_object: !bug!(shared.config(), GateCheckedOnce),
            skipping: false,
            hold_while_writing: bug!(shared.config(), GateHeldWhileWriting),
        })
    }

    /// Whether the next object may be processed. Once Stop has begun, the
    /// guard is released and this and every later object is skipped.
    pub async fn admit<E: Env>(&mut self, ctx: &Ctx<'_, E>) -> bool {
        if self.skipping {
            return false;
        }
        // Only objects that may still be processed pass the chaos point, so a
        // schedule cannot stretch a handler that is only writing skip entries.
        ctx.shared.env().point(Point::HttpBetweenObjects).await;
        if self.per_object && !ctx.shared.work_open() {
            self.skipping = true;
            // Skipping the rest is how the handler ends its gated part.
            if let Some(guard) = self.guard.take() {
                guard.finish();
            }
            return false;
        }
        true
    }

    /// Planted bug: a gate that never consulted the work group. Without the
    /// bug zoo it admits nothing (and no correct caller asks for it).
    fn bypassed() -> Gate {
        #[cfg(feature = "bug-zoo")]
        let guard = Some(WorkGuard::forged());
        #[cfg(not(feature = "bug-zoo"))]
        let guard = None;
        Gate { guard, per_object: false, skipping: false, hold_while_writing: false }
    }

    /// The admission the store asks of a change; `None` once the gate skips.
    pub fn admission(&self) -> Option<&Admission> {
        self.guard.as_ref()?.admission()
    }

    /// Runs `apply` for each object that is admitted; every later object gets
    /// the skip entry and is not touched. `apply` owns its object, so that it
    /// can let go of it before the store changes it (see [`Object::release`]).
    pub async fn each<E: Env>(
        &mut self,
        ctx: &Ctx<'_, E>,
        objects: Vec<Arc<Object>>,
        mut apply: impl FnMut(Arc<Object>, &Admission) -> Value,
    ) -> Vec<Value> {
        let mut results = Vec::with_capacity(objects.len());
        for obj in objects {
            let admitted = self.admit(ctx).await;
            match self.admission().filter(|_| admitted) {
                Some(admission) => results.push(apply(obj, admission)),
                None => {
                    let status = "Action skipped: Shutting down.";
                    results.push(object_result(503, obj.otype.name(), &obj.name, status));
                }
            }
        }
        results
    }

    /// Ends the gated part before the reply is written: the guard is dropped
    /// here, unless the planted bug hands it to the response body.
    pub fn finish(mut self, mut reply: Reply) -> Reply {
        if self.hold_while_writing {
            reply.guard = self.guard.take();
        }
        if let Some(guard) = self.guard.take() {
            guard.finish();
        }
        reply
    }
}

/// The codes of per-object results, for [`overall_status`].
pub fn codes(results: &[Value]) -> impl Iterator<Item = u16> + '_ {
    results.iter().filter_map(|r| r.get("code")?.as_u64()).map(|c| u16::try_from(c).unwrap_or(500))
}

/// The overall status of a multi-object response (contract section 4): 200
/// if every object succeeded; the failing code if all failures share it;
/// else 500.
pub fn overall_status(codes: impl IntoIterator<Item = u16>) -> u16 {
    let failing: BTreeSet<u16> = codes.into_iter().filter(|c| !(200..300).contains(c)).collect();
    match failing.len() {
        0 => 200,
        1 => failing.into_iter().next().unwrap_or(500),
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overall_status_follows_the_contract() {
        assert_eq!(overall_status([200, 200]), 200);
        assert_eq!(overall_status([200, 503, 503]), 503);
        assert_eq!(overall_status([503]), 503);
        assert_eq!(overall_status([200, 409, 503]), 500);
        assert_eq!(overall_status([404, 409]), 500);
        assert_eq!(overall_status([201, 200]), 200);
        assert_eq!(overall_status([]), 200);
    }

    #[test]
    fn a_work_guard_leaves_the_group_before_reporting() {
        let wg = crate::waitgroup::WaitGroup::new();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (wg2, seen2) = (wg.clone(), seen.clone());
        let guard = WorkGuard::new(Admission::enter(&wg).unwrap(), move |finished| {
            *seen2.lock().unwrap() = Some((wg2.holders(), finished));
        });
        assert_eq!(wg.holders(), 1);
        guard.finish();
        assert_eq!(*seen.lock().unwrap(), Some((0, true)));
        let torn = seen.clone();
        drop(WorkGuard::new(Admission::enter(&wg).unwrap(), move |finished| {
            *torn.lock().unwrap() = Some((0, finished));
        }));
        assert_eq!(*seen.lock().unwrap(), Some((0, false)), "a guard dropped unfinished reports a tear");
    }
}
