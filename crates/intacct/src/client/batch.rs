//! Several independent functions in one request, each answered on its own.
//!
//! A request's round trip costs the same for one function as for twenty, so independent small
//! reads (every stream's `lookup`, first pages of several objects, the periods of GL balances) go
//! together. Each function keeps its own control id and its own outcome: one that failed for a
//! passing reason is sent again *alone* (with the usual retries), never the whole request, so a
//! gateway that fails now and then one function in many still lets the request's work finish.

use crate::error::{ErrorKind, ErrorLevel, IntacctError};
use crate::protocol::{Function, FunctionCall, FunctionResult};

use super::IntacctClient;
use super::results::{check_result, single_result, take_result};

/// The most functions put in one request. The XSD sets no bound and Sage documents no server cap
/// (reference §8.1, unconfirmed); the SDKs cap `read` keys at 100. 50 keeps a request well inside
/// both while covering the 20 objects a connection typically configures in one round trip.
pub const MAX_FUNCTIONS_PER_REQUEST: usize = 50;

impl IntacctClient {
    /// Sends `calls` in as few requests as [`MAX_FUNCTIONS_PER_REQUEST`] allows and returns each
    /// function's own result, in the order given. A function whose result is a retryable failure
    /// is sent again alone; any other failure is that function's `Err`. The outer `Err` is a
    /// failure of a request as a whole (sign-in, transport, an envelope we cannot read), which no
    /// function of it survives.
    pub(crate) async fn call_each(
        &self,
        what: &str,
        calls: Vec<FunctionCall>,
    ) -> Result<Vec<Result<FunctionResult, IntacctError>>, IntacctError> {
        let mut out = Vec::with_capacity(calls.len());
        let mut calls = calls.into_iter().peekable();
        while calls.peek().is_some() {
            let chunk: Vec<Function> = calls
                .by_ref()
                .take(MAX_FUNCTIONS_PER_REQUEST)
                .map(|call| Function {
                    control_id: self.control_id(what),
                    call,
                })
                .collect();
            let answered = self.answer_each(what, &chunk).await?;
            for (f, r) in chunk.into_iter().zip(answered) {
                let r = match r {
                    Err(e) if e.is_retryable() => self.call_alone(what, f).await,
                    other => other,
                };
                out.push(r);
            }
        }
        Ok(out)
    }

    /// One request of `functions`; each result paired with its function by control id.
    async fn answer_each(
        &self,
        what: &str,
        functions: &[Function],
    ) -> Result<Vec<Result<FunctionResult, IntacctError>>, IntacctError> {
        if functions.len() == 1 {
            // Judged whole: a retryable failure was already retried by the transport.
            let mut resp = self.call(what, functions).await?;
            return Ok(vec![match single_result(&resp, what) {
                Ok(_) => Ok(take_result(&mut resp, 0)),
                Err(e) => Err(e),
            }]);
        }
        let resp = self.call(what, functions).await?;
        let mut results = resp
            .operation
            .expect("checked by classify_exchange")
            .results;
        if results.len() != functions.len() {
            return Err(IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                format!(
                    "sent {} functions, got {} results",
                    functions.len(),
                    results.len()
                ),
            )
            .with_function(what));
        }
        // Paired by control id; by position only for a gateway that echoes none of them.
        let echoed = results.iter().any(|r| !r.control_id.is_empty());
        let mut out = Vec::with_capacity(functions.len());
        for (i, f) in functions.iter().enumerate() {
            let j = if echoed {
                results
                    .iter()
                    .position(|r| r.control_id == f.control_id)
                    .ok_or_else(|| {
                        IntacctError::new(
                            ErrorKind::BadResponse,
                            ErrorLevel::Function,
                            format!("no result carries control id {:?}", f.control_id),
                        )
                        .with_function(what)
                    })?
            } else {
                i
            };
            let r = std::mem::take(&mut results[j]);
            out.push(check_result(&r).map(|()| r));
        }
        Ok(out)
    }

    /// `f` in a request of its own, retried as any single call is.
    async fn call_alone(&self, what: &str, f: Function) -> Result<FunctionResult, IntacctError> {
        tracing::debug!(
            function = what,
            control_id = %f.control_id,
            "one function of a batch failed for a passing reason; sending it again alone"
        );
        let mut resp = self.call(what, std::slice::from_ref(&f)).await?;
        single_result(&resp, what)?;
        Ok(take_result(&mut resp, 0))
    }
}
