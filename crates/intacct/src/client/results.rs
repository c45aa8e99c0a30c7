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

/// The one result of a one-function request. Every `<result>` is read: a failure in any of them
/// is the error (with every failed result's errors, so a cause the gateway put in a second result
/// is shown), and more results than the one function sent is a protocol error.
pub(super) fn single_result<'a>(
    resp: &'a Response,
    what: &str,
) -> Result<&'a FunctionResult, IntacctError> {
    let results = resp
        .operation
        .as_ref()
        .map(|op| op.results.as_slice())
        .unwrap_or_default();
    let Some(first) = results.first() else {
        return Err(IntacctError::new(
            ErrorKind::BadResponse,
            ErrorLevel::Function,
            "the response has no <result>",
        )
        .with_function(what));
    };
    let failed: Vec<&FunctionResult> = results.iter().filter(|r| !r.status.is_success()).collect();
    if let Some(r) = failed.first() {
        if failed.len() == 1 {
            check_result(r)?;
        }
        let errors = failed
            .iter()
            .flat_map(|r| r.errors.iter().cloned())
            .collect();
        let mut e = IntacctError::from_gateway(ErrorLevel::Function, errors, None);
        if e.errors.is_empty() {
            e.context = Some(format!(
                "{} results failed without error details",
                failed.len()
            ));
        }
        return Err(e.with_function(&r.function));
    }
    if results.len() > 1 {
        return Err(IntacctError::new(
            ErrorKind::BadResponse,
            ErrorLevel::Function,
            format!("sent 1 function, got {} results", results.len()),
        )
        .with_function(what));
    }
    Ok(first)
}

/// Moves result `i` out of the response (records are not copied).
pub(super) fn take_result(resp: &mut Response, i: usize) -> FunctionResult {
    resp.operation
        .as_mut()
        .and_then(|op| op.results.get_mut(i))
        .map(std::mem::take)
        .unwrap_or_default()
}

/// A successful query result as a page. A success without `<data>` is not an empty page: the
/// gateway answered something we did not ask for, and reading it as "no more records" would end a
/// pull early and move its cursor past records never read.
pub(super) fn page_from(object: &str, r: FunctionResult, pass: Pass) -> Result<Page, IntacctError> {
    let Some(data) = r.data.as_ref() else {
        return Err(IntacctError::new(
            ErrorKind::BadResponse,
            ErrorLevel::Function,
            format!(
                "a successful {} result for {object} carries no <data>",
                r.function
            ),
        )
        .with_function(&r.function));
    };
    Ok(Page {
        object: object.to_owned(),
        total_count: data.total_count,
        num_remaining: data.num_remaining,
        records: r.records,
        pass,
        cursor: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{DataAttrs, ErrorDetail, Operation, Status};

    fn result(status: Status, errors: &[(&str, &str)], data: bool) -> FunctionResult {
        FunctionResult {
            status,
            function: "query".into(),
            data: data.then(DataAttrs::default),
            errors: errors
                .iter()
                .map(|(no, d)| ErrorDetail {
                    errorno: (*no).into(),
                    description: (*d).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn response(results: Vec<FunctionResult>) -> Response {
        Response {
            operation: Some(Operation {
                results,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_cause_in_a_second_result_is_shown() {
        let resp = response(vec![
            result(
                Status::Aborted,
                &[(
                    "XL03000009",
                    "The entire transaction in this operation has been rolled back due to an error.",
                )],
                false,
            ),
            result(
                Status::Failure,
                &[(
                    "PL04000005",
                    "You do not have permission for API operation READ_BY_QUERY",
                )],
                false,
            ),
        ]);
        let e = single_result(&resp, "query").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("PL04000005"), "{text}");
        assert!(text.contains("XL03000009"), "{text}");
    }

    #[test]
    fn more_results_than_functions_is_a_protocol_error() {
        let resp = response(vec![
            result(Status::Success, &[], true),
            result(Status::Success, &[], true),
        ]);
        let e = single_result(&resp, "query").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadResponse);
        assert!(e.to_string().contains("got 2 results"), "{e}");
    }

    #[test]
    fn a_successful_query_without_data_is_not_an_empty_page() {
        let e = page_from("VENDOR", result(Status::Success, &[], false), Pass::Query).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadResponse);
        let page = page_from("VENDOR", result(Status::Success, &[], true), Pass::Query).unwrap();
        assert!(page.records.is_empty());
    }
}
