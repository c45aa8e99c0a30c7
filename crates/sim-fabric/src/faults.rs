//! Fault injection. A [`FaultPlan`] is a list of rules tried in order; the first whose operation
//! and request numbers match decides the fault. Request numbers count per operation from 1. Also
//! accepted as JSON by `POST /admin/faults`:
//! `{"rules": [{"operation": "rename", "requests": [1], "fault": {"type": "status", "status": 500}}]}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Token,
    Create,
    Append,
    Flush,
    Rename,
    List,
    Properties,
    Read,
    Delete,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Token => "token",
            Operation::Create => "create",
            Operation::Append => "append",
            Operation::Flush => "flush",
            Operation::Rename => "rename",
            Operation::List => "list",
            Operation::Properties => "properties",
            Operation::Read => "read",
            Operation::Delete => "delete",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answers this status (500, 503: `InternalError` / `ServerBusy` bodies) without doing anything.
    Status { status: u16 },
    /// 429 with `Retry-After`.
    Throttle { retry_after_secs: u64 },
    /// Does the operation, then answers 500 `InternalError`: the caller cannot know it happened.
    StatusAfterApply { status: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    pub operation: Operation,
    /// The request numbers (of this operation) that fail; empty: every request.
    #[serde(default)]
    pub requests: Vec<u64>,
    pub fault: FaultKind,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    pub rules: Vec<FaultRule>,
}

/// The plan in force and its per-operation request counts.
#[derive(Default)]
pub(crate) struct Faults {
    plan: FaultPlan,
    counts: BTreeMap<Operation, u64>,
}

impl Faults {
    pub(crate) fn set(&mut self, plan: FaultPlan) {
        self.plan = plan;
        self.counts.clear();
    }

    /// Counts the request and returns its fault, if any.
    pub(crate) fn begin(&mut self, op: Operation) -> Option<FaultKind> {
        let n = self.counts.entry(op).or_insert(0);
        *n += 1;
        let n = *n;
        self.plan
            .rules
            .iter()
            .find(|r| r.operation == op && (r.requests.is_empty() || r.requests.contains(&n)))
            .map(|r| r.fault.clone())
    }
}
