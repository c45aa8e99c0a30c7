//! What a run needs before its first page, in one round trip: the API user's formatting (how
//! timestamps read) and the definition of every object the connection reads.
//!
//! Sent one by one these cost one round trip each (21 for 20 objects, before any data moves);
//! together they cost one, and each answer stays its own (see [`super::batch`]): an object this
//! company lacks fails its own lookup only.

use crate::error::{ErrorKind, ErrorLevel, IntacctError};
use crate::protocol::{FunctionCall, FunctionResult, ObjectDefinition};

use super::{IntacctClient, UserFormatting};

/// The answers of [`IntacctClient::setup`], each on its own.
#[derive(Debug)]
pub struct Setup {
    pub formatting: Result<UserFormatting, IntacctError>,
    /// In the order the objects were given.
    pub lookups: Vec<Result<ObjectDefinition, IntacctError>>,
}

impl IntacctClient {
    /// `readUserFormatting` and a `lookup` of each object, batched into as few requests as
    /// possible. `Err` only when the request as a whole failed (a refused sign-in, Intacct
    /// unreachable after the retries): every answer would be that error.
    pub async fn setup(&self, objects: &[&str]) -> Result<Setup, IntacctError> {
        let mut calls = vec![FunctionCall::ReadUserFormatting {
            user_id: self.inner.settings.user_id.clone(),
        }];
        calls.extend(objects.iter().map(|o| FunctionCall::Lookup {
            object: (*o).to_owned(),
        }));
        let mut results = self.call_each("setup", calls).await?.into_iter();
        let formatting = results
            .next()
            .expect("one result per function")
            .map(formatting_from);
        let lookups = objects
            .iter()
            .zip(results)
            .map(|(o, r)| r.and_then(|r| definition_from(o, r)))
            .collect();
        Ok(Setup {
            formatting,
            lookups,
        })
    }
}

/// A successful `lookup` result as the object's definition.
pub(super) fn definition_from(
    object: &str,
    r: FunctionResult,
) -> Result<ObjectDefinition, IntacctError> {
    r.definition.ok_or_else(|| {
        IntacctError::new(
            ErrorKind::BadResponse,
            ErrorLevel::Function,
            format!("lookup of {object} returned no <Type>"),
        )
    })
}

/// A successful `readUserFormatting` result.
pub(super) fn formatting_from(r: FunctionResult) -> UserFormatting {
    let rec = r.records.into_iter().next().unwrap_or_default();
    let g = |k: &str| rec.get(k).unwrap_or("").to_owned();
    UserFormatting {
        locale: g("locale"),
        date_format: g("dateformat"),
        clock: g("clock"),
        gmt_offset: g("gmtoffset"),
        raw: rec,
    }
}
