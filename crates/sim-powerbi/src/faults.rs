//! Fault injection: which request of which operation fails, and how.
//!
//! A [`FaultPlan`] is a list of rules; the first rule whose operation and trigger match a request decides its
//! fault. Request numbers count per operation from 1 (the 3rd POST rows is `Nth { requests: vec![3] }`), and
//! probabilities draw from a random generator seeded by the plan, so a run is reproducible.
//! The plan is also accepted as JSON by `POST /admin/faults`.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The operations the simulator distinguishes (stats and fault rules use these names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Token,
    GetGroups,
    GetDatasets,
    GetDataset,
    PostDataset,
    DeleteDataset,
    GetTables,
    PutTable,
    PostRows,
    DeleteRows,
    ExecuteQueries,
    GetRefreshes,
    GetReports,
    RebindReport,
    GetDashboards,
    GetTiles,
    /// `/v1.0/myorg/...` without `/groups/{id}` (refused for service principals).
    MyOrg,
}

impl Operation {
    /// The snake_case name used in stats and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Token => "token",
            Operation::GetGroups => "get_groups",
            Operation::GetDatasets => "get_datasets",
            Operation::GetDataset => "get_dataset",
            Operation::PostDataset => "post_dataset",
            Operation::DeleteDataset => "delete_dataset",
            Operation::GetTables => "get_tables",
            Operation::PutTable => "put_table",
            Operation::PostRows => "post_rows",
            Operation::DeleteRows => "delete_rows",
            Operation::ExecuteQueries => "execute_queries",
            Operation::GetRefreshes => "get_refreshes",
            Operation::GetReports => "get_reports",
            Operation::RebindReport => "rebind_report",
            Operation::GetDashboards => "get_dashboards",
            Operation::GetTiles => "get_tiles",
            Operation::MyOrg => "my_org",
        }
    }
}

/// When a rule fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Trigger {
    /// Every matching request.
    Always,
    /// These 1-based request numbers of the operation.
    Nth { requests: Vec<u64> },
    /// The first `n` requests of the operation.
    FirstN { n: u64 },
    /// Each request independently with probability `p` (0..=1).
    Probability { p: f64 },
}

/// What happens to a request a rule fires on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status (500/502/503/504) and a generic error body; nothing is applied.
    Status { status: u16 },
    /// 429 with `Retry-After: retry_after_secs`; nothing is applied.
    Throttle { retry_after_secs: u64 },
    /// Read the request, do NOT apply it, close the connection without an answer.
    ResetBeforeApply,
    /// Read and apply the request (rows ARE stored), then close the connection without an answer:
    /// the ambiguous case a client cannot tell from `ResetBeforeApply`.
    ResetAfterApply,
    /// Wait this long before handling the request normally.
    Delay { millis: u64 },
}

/// One rule: an operation (or any), a trigger and a fault.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// `None` matches every operation.
    #[serde(default)]
    pub operation: Option<Operation>,
    pub trigger: Trigger,
    pub fault: FaultKind,
}

/// A set of fault rules plus the seed for probabilistic ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        FaultPlan::default()
    }
    /// Adds a rule (builder style).
    pub fn with(
        mut self,
        operation: Option<Operation>,
        trigger: Trigger,
        fault: FaultKind,
    ) -> Self {
        self.rules.push(FaultRule {
            operation,
            trigger,
            fault,
        });
        self
    }
    /// Sets the seed for probabilistic triggers.
    pub fn seeded(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// The live state of a plan: per-operation request counters and the seeded generator.
pub(crate) struct FaultEngine {
    plan: FaultPlan,
    counters: BTreeMap<Operation, u64>,
    rng: StdRng,
}

impl FaultEngine {
    pub(crate) fn new(plan: FaultPlan, default_seed: u64) -> Self {
        let seed = plan.seed.unwrap_or(default_seed);
        FaultEngine {
            plan,
            counters: BTreeMap::new(),
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// Counts a request of `op` and returns the fault to apply, if any.
    pub(crate) fn next(&mut self, op: Operation) -> Option<FaultKind> {
        let n = {
            let c = self.counters.entry(op).or_insert(0);
            *c += 1;
            *c
        };
        for rule in &self.plan.rules {
            if rule.operation.is_some_and(|o| o != op) {
                continue;
            }
            let fires = match &rule.trigger {
                Trigger::Always => true,
                Trigger::Nth { requests } => requests.contains(&n),
                Trigger::FirstN { n: first } => n <= *first,
                Trigger::Probability { p } => self.rng.random_bool(p.clamp(0.0, 1.0)),
            };
            if fires {
                return Some(rule.fault.clone());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_counts_per_operation() {
        let plan = FaultPlan::none().with(
            Some(Operation::PostRows),
            Trigger::Nth { requests: vec![2] },
            FaultKind::ResetAfterApply,
        );
        let mut e = FaultEngine::new(plan, 1);
        assert_eq!(e.next(Operation::PostRows), None);
        assert_eq!(e.next(Operation::Token), None);
        assert_eq!(
            e.next(Operation::PostRows),
            Some(FaultKind::ResetAfterApply)
        );
        assert_eq!(e.next(Operation::PostRows), None);
    }

    #[test]
    fn probability_is_reproducible_with_a_seed() {
        let plan = FaultPlan::none()
            .with(
                None,
                Trigger::Probability { p: 0.5 },
                FaultKind::Status { status: 503 },
            )
            .seeded(7);
        let draw = |plan: &FaultPlan| {
            let mut e = FaultEngine::new(plan.clone(), 0);
            (0..64)
                .map(|_| e.next(Operation::PostRows).is_some())
                .collect::<Vec<_>>()
        };
        let a = draw(&plan);
        assert_eq!(a, draw(&plan));
        let hits = a.iter().filter(|x| **x).count();
        assert!(hits > 10 && hits < 54, "p=0.5 over 64 draws gave {hits}");
    }

    #[test]
    fn plan_round_trips_as_json() {
        let json = r#"{"seed":3,"rules":[{"operation":"post_rows","trigger":{"type":"first_n","n":2},
            "fault":{"type":"throttle","retry_after_secs":4}}]}"#;
        let plan: FaultPlan = serde_json::from_str(json).unwrap();
        assert_eq!(plan.rules[0].operation, Some(Operation::PostRows));
        assert_eq!(
            plan.rules[0].fault,
            FaultKind::Throttle {
                retry_after_secs: 4
            }
        );
        let back: FaultPlan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(back, plan);
    }
}
