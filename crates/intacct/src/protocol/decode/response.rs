//! What a decoded response holds: the envelope's blocks and each function's result, every part
//! optional because real replies strip or omit whatever they like (see the reference, §3).

use chrono::{DateTime, FixedOffset};

use crate::protocol::{ErrorDetail, Record};

/// A status value; anything other than `success` is not success (§3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    Aborted,
    Other(String),
    #[default]
    Missing,
}

impl Status {
    pub(super) fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "success" => Self::Success,
            "failure" => Self::Failure,
            "aborted" => Self::Aborted,
            "" => Self::Missing,
            _ => Self::Other(s.trim().to_owned()),
        }
    }
    pub fn is_success(&self) -> bool {
        *self == Self::Success
    }
}

/// The response `control` block; every child but `status` may be missing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Control {
    pub status: Status,
    pub sender_id: String,
    pub control_id: String,
    pub unique_id: String,
    pub dtd_version: String,
}

/// `operation/authentication`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authentication {
    pub status: Status,
    pub user_id: String,
    pub company_id: String,
    pub location_id: Option<String>,
    pub session_timestamp: Option<DateTime<FixedOffset>>,
    pub session_timeout: Option<DateTime<FixedOffset>>,
}

/// Attributes of `<data>`; each is optional because each function sends a different set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataAttrs {
    pub list_type: Option<String>,
    pub count: Option<u64>,
    pub total_count: Option<u64>,
    pub num_remaining: Option<u64>,
    /// `readByQuery` paging handle; empty when nothing remains.
    pub result_id: Option<String>,
    pub offset: Option<u64>,
}

/// A field of a `lookup` answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldDef {
    pub id: String,
    pub label: String,
    pub description: String,
    pub data_type: String,
    pub required: bool,
    pub read_only: bool,
    pub is_custom: bool,
    pub valid_values: Vec<String>,
}

/// The `lookup` answer: an object's fields and relationships.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectDefinition {
    pub name: String,
    pub document_type: String,
    pub fields: Vec<FieldDef>,
    /// One record per `<Relationship>` (OBJECTPATH, OBJECTNAME, RELATIONSHIPTYPE, ...).
    pub relationships: Vec<Record>,
}

/// One `<result>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionResult {
    pub status: Status,
    pub function: String,
    pub control_id: String,
    /// `None` when the result had no `<data>`.
    pub data: Option<DataAttrs>,
    /// Records of `<data>`; empty when they went to a streaming callback.
    pub records: Vec<Record>,
    /// Records seen in `<data>`, whether kept or streamed.
    pub record_count: u64,
    pub errors: Vec<ErrorDetail>,
    /// Filled for `lookup`.
    pub definition: Option<ObjectDefinition>,
}

/// `<operation>`: the authentication outcome, then errors or results.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Operation {
    pub authentication: Authentication,
    /// Authentication-level errors (a sibling `errormessage` after `authentication`).
    pub errors: Vec<ErrorDetail>,
    pub results: Vec<FunctionResult>,
}

/// A decoded response document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub control: Control,
    /// Control-level errors (`errormessage` directly under `response`).
    pub errors: Vec<ErrorDetail>,
    pub operation: Option<Operation>,
    /// Set for the asynchronous acknowledgement form.
    pub acknowledgement: Option<Status>,
}
