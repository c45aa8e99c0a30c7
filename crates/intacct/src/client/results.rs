//! Function results turned into what callers get: a failed `<result>` into a classified error,
//! a successful one into a [`Page`]. Every read goes through here, so a result is judged the
//! same way whichever operation asked for it.

use crate::error::{ErrorKind, ErrorLevel, IntacctError};
use crate::protocol::{FunctionResult, Response};

use super::page::{Page, Pass};

pub(super) fn check_result(r: &FunctionResult) -> Result<(), IntacctError> {
    if r.status.is_success() {
        return Ok(());
    }
    let mut e = IntacctError::from_gateway(ErrorLevel::Function, r.errors.clone(), None);
    if r.errors.is_empty() {
        e.context = Some(format!(
            "result status {:?} without error details",
            r.status
        ));
    }
    Err(e.with_function(&r.function))
}

pub(super) fn single_result<'a>(
    resp: &'a Response,
    what: &str,
) -> Result<&'a FunctionResult, IntacctError> {
    let r = resp
        .operation
        .as_ref()
        .and_then(|op| op.results.first())
        .ok_or_else(|| {
            IntacctError::new(
                ErrorKind::BadResponse,
                ErrorLevel::Function,
                "the response has no <result>",
            )
            .with_function(what)
        })?;
    check_result(r)?;
    Ok(r)
}

/// Moves result `i` out of the response (records are not copied).
pub(super) fn take_result(resp: &mut Response, i: usize) -> FunctionResult {
    resp.operation
        .as_mut()
        .and_then(|op| op.results.get_mut(i))
        .map(std::mem::take)
        .unwrap_or_default()
}

pub(super) fn page_from(object: &str, r: FunctionResult, pass: Pass) -> Page {
    Page {
        object: object.to_owned(),
        records: r.records,
        total_count: r.data.as_ref().and_then(|d| d.total_count),
        num_remaining: r.data.as_ref().and_then(|d| d.num_remaining),
        pass,
        cursor: None,
    }
}
