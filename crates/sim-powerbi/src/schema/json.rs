//! Reading a JSON body as the service's OData deserializer does: property names are case-sensitive,
//! an unknown property is an error naming the service-side type, and each node must be of its kind.

use serde_json::{Map, Value};

const TYPE_PREFIX: &str = "Microsoft.PowerBI.ServiceContracts.Api.";

/// A validation failure: rendered as 400 `{"error":{"code":"BadRequest","message":"Bad Request","details":[{message,target}]}}`
/// or, for `Streaming`, as the FeatureDeprecatedError `pbi.error` document.
#[derive(Debug, PartialEq)]
pub(crate) enum SchemaError {
    BadRequest {
        message: String,
        target: &'static str,
    },
    StreamingDeprecated,
    PushDeprecated,
}

pub(super) fn bad(message: impl Into<String>, target: &'static str) -> SchemaError {
    SchemaError::BadRequest {
        message: message.into(),
        target,
    }
}

pub(super) fn check_props(
    obj: &Map<String, Value>,
    allowed: &[&str],
    type_name: &str,
    target: &'static str,
) -> Result<(), SchemaError> {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(bad(
                format!(
                    "The property '{key}' does not exist on type '{TYPE_PREFIX}{type_name}'. Make sure to only use \
                     property names that are defined by the type."
                ),
                target,
            ));
        }
    }
    Ok(())
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn as_object<'a>(
    v: &'a Value,
    type_name: &str,
    target: &'static str,
) -> Result<&'a Map<String, Value>, SchemaError> {
    v.as_object().ok_or_else(|| {
        bad(
            format!(
                "An unexpected '{}' node was found when reading a value of type '{TYPE_PREFIX}{type_name}'. A \
                 'StartObject' node was expected.",
                node_kind(v)
            ),
            target,
        )
    })
}

fn node_kind(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "StartArray",
        Value::Object(_) => "StartObject",
        _ => "PrimitiveValue",
    }
}

pub(super) fn opt_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    target: &'static str,
) -> Result<Option<&'a str>, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(
            format!(
                "Cannot convert the literal '{}' to the expected type 'Edm.String' (property '{key}').",
                literal(other)
            ),
            target,
        )),
    }
}

pub(super) fn req_string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    owner: &str,
    target: &'static str,
) -> Result<&'a str, SchemaError> {
    opt_string(obj, key, target)?.ok_or_else(|| {
        bad(
            format!("The required property '{key}' of {owner} is missing."),
            target,
        )
    })
}

pub(super) fn opt_bool(
    obj: &Map<String, Value>,
    key: &str,
    target: &'static str,
) -> Result<(), SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(_)) => Ok(()),
        Some(other) => Err(bad(
            format!(
                "Cannot convert the literal '{}' to the expected type 'Edm.Boolean' (property '{key}').",
                literal(other)
            ),
            target,
        )),
    }
}

pub(super) fn opt_array<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    target: &'static str,
) -> Result<Option<&'a Vec<Value>>, SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(bad(
            format!(
                "An unexpected '{}' node was found for property '{key}'. A 'StartArray' node was expected.",
                node_kind(other)
            ),
            target,
        )),
    }
}
