//! Fault injection: which gateway request gets which failure, by request number or seeded probability.

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

/// A failure the simulator can produce instead of (or inside) a normal answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// HTTP 500 with an empty body (mid-process failure; outcome unknown).
    Http500Empty,
    /// HTTP 502 with an HTML body.
    Http502Html,
    /// HTTP 503 with an HTML body.
    Http503Html,
    /// HTTP 524 (CDN timeout) with a non-XML body.
    Http524,
    /// HTTP 520 Cloudflare error page containing `cf-error-details`.
    CloudflareHtml,
    /// HTTP 429 GW-0010 even though the concurrency cap was not hit.
    RateLimited,
    /// HTTP 200 whose body is not well-formed XML.
    MalformedXml,
    /// HTTP 200 with the real answer cut in half.
    TruncatedXml,
    /// HTTP 200, control-level failure (errormessage beside control).
    ControlError,
    /// HTTP 200, authentication-level failure.
    AuthError,
    /// HTTP 200, every function fails.
    FunctionError,
    /// HTTP 200, every function fails with "The Service is Temporarily Off-line".
    ServiceOffline,
    /// The normal answer, after an extra delay.
    Slow { millis: u64 },
    /// The connection is closed without a complete HTTP response.
    DropConnection,
}

/// When a rule fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "when", rename_all = "snake_case")]
pub enum FaultTrigger {
    /// The n-th gateway request (1-based) counted from when the plan was installed.
    OnRequest { n: u64 },
    /// Every gateway request from the n-th on (1-based), e.g. an outage.
    FromRequest { n: u64 },
    /// Each request with this probability, drawn from the plan's seeded generator.
    Probability { p: f64 },
    /// Every n-th *function* (1-based, counted across requests from installation) fails on its
    /// own while the others of its request succeed: with `transaction="false"` the gateway judges
    /// each function separately (reference §1.3), so one function of a batch can be "temporarily
    /// off-line" while the rest answer. Only function-level faults (`function_error`,
    /// `service_offline`) make sense here.
    EveryFunction { n: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    pub trigger: FaultTrigger,
    pub fault: Fault,
}

/// The set of rules in force. The first rule that fires wins.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    pub fn none() -> Self {
        FaultPlan::default()
    }

    /// A plan with one rule: request `n` (1-based, from installation) gets `fault`.
    pub fn on_request(n: u64, fault: Fault) -> Self {
        FaultPlan {
            seed: 0,
            rules: vec![FaultRule {
                trigger: FaultTrigger::OnRequest { n },
                fault,
            }],
        }
    }

    /// Adds a rule, builder style.
    pub fn with(mut self, trigger: FaultTrigger, fault: Fault) -> Self {
        self.rules.push(FaultRule { trigger, fault });
        self
    }
}

/// The installed plan with its counters and random generator.
#[derive(Debug)]
pub struct FaultState {
    plan: FaultPlan,
    seen: u64,
    functions: u64,
    rng: StdRng,
}

impl Default for FaultState {
    fn default() -> Self {
        Self::new(FaultPlan::none())
    }
}

impl FaultState {
    pub fn new(plan: FaultPlan) -> Self {
        let rng = StdRng::seed_from_u64(plan.seed);
        FaultState {
            plan,
            seen: 0,
            functions: 0,
            rng,
        }
    }

    /// Called once per gateway request; returns the fault to inject, if any.
    pub fn next_fault(&mut self) -> Option<Fault> {
        self.seen += 1;
        let n = self.seen;
        for rule in &self.plan.rules {
            let fires = match rule.trigger {
                FaultTrigger::OnRequest { n: k } => k == n,
                FaultTrigger::FromRequest { n: k } => n >= k,
                FaultTrigger::Probability { p } => self.rng.random::<f64>() < p,
                FaultTrigger::EveryFunction { .. } => false,
            };
            if fires {
                return Some(rule.fault.clone());
            }
        }
        None
    }

    /// Called once per function of a request that got no request-level fault; returns the fault
    /// this one function gets, if any.
    pub fn next_function_fault(&mut self) -> Option<Fault> {
        self.functions += 1;
        let n = self.functions;
        self.plan.rules.iter().find_map(|rule| match rule.trigger {
            FaultTrigger::EveryFunction { n: k } if k > 0 && n.is_multiple_of(k) => {
                Some(rule.fault.clone())
            }
            _ => None,
        })
    }
}

impl Fault {
    pub fn extra_delay(&self) -> Option<Duration> {
        match self {
            Fault::Slow { millis } => Some(Duration::from_millis(*millis)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_faults_are_reproducible_from_the_seed() {
        let plan = FaultPlan {
            seed: 9,
            rules: vec![FaultRule {
                trigger: FaultTrigger::Probability { p: 0.3 },
                fault: Fault::Http502Html,
            }],
        };
        let run = |plan: &FaultPlan| {
            let mut s = FaultState::new(plan.clone());
            (0..200)
                .map(|_| s.next_fault().is_some())
                .collect::<Vec<_>>()
        };
        let a = run(&plan);
        assert_eq!(a, run(&plan));
        let hits = a.iter().filter(|x| **x).count();
        assert!((30..=90).contains(&hits), "{hits}");
    }

    #[test]
    fn request_numbers_count_from_installation() {
        let mut s = FaultState::new(
            FaultPlan::on_request(2, Fault::Http500Empty)
                .with(FaultTrigger::FromRequest { n: 4 }, Fault::Http524),
        );
        let got: Vec<_> = (0..5).map(|_| s.next_fault()).collect();
        assert_eq!(
            got,
            [
                None,
                Some(Fault::Http500Empty),
                None,
                Some(Fault::Http524),
                Some(Fault::Http524)
            ]
        );
    }
}
