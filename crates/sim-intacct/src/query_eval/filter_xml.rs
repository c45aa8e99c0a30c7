//! The `query` function's `<filter>` element: its schema check (one operator, value counts) and its
//! conversion into a filter tree.

use super::filter::{Filter, FilterError, Op, field_idx};
use crate::data::ObjectDef;
use crate::xml_in::{Element, XmlError, check_sequence, not_expected};

const BINARY: &[(&str, Op)] = &[
    ("equalto", Op::Eq),
    ("notequalto", Op::Ne),
    ("lessthan", Op::Lt),
    ("lessthanorequalto", Op::Le),
    ("greaterthan", Op::Gt),
    ("greaterthanorequalto", Op::Ge),
    ("like", Op::Like),
    ("notlike", Op::NotLike),
];

const ALL_OPS: &[&str] = &[
    "and",
    "or",
    "equalto",
    "notequalto",
    "lessthan",
    "lessthanorequalto",
    "greaterthan",
    "greaterthanorequalto",
    "between",
    "in",
    "notin",
    "like",
    "notlike",
    "isnull",
    "isnotnull",
];

/// Schema check of a `<filter>` (exactly one operator; and/or with >= 2 children; value counts).
pub fn check_filter_schema(filter: &Element) -> Result<(), XmlError> {
    match filter.children.as_slice() {
        [] => Err(XmlError::Schema(format!(
            "Element 'filter': Missing child element(s). Expected is one of ( {} ).",
            ALL_OPS.join(", ")
        ))),
        [one] => check_op_schema(one),
        [_, extra, ..] => Err(not_expected(&extra.name, &[])),
    }
}

fn check_op_schema(el: &Element) -> Result<(), XmlError> {
    match el.name.as_str() {
        "and" | "or" => {
            if el.children.len() < 2 {
                return Err(XmlError::Schema(format!(
                    "Element '{}': Missing child element(s). Expected is one of ( {} ).",
                    el.name,
                    ALL_OPS.join(", ")
                )));
            }
            el.children.iter().try_for_each(check_op_schema)
        }
        "isnull" | "isnotnull" => check_sequence(el, &[("field", 1, Some(1))]),
        "between" => check_sequence(el, &[("field", 1, Some(1)), ("value", 2, Some(2))]),
        "in" | "notin" => check_sequence(el, &[("field", 1, Some(1)), ("value", 1, Some(1000))]),
        n if BINARY.iter().any(|(b, _)| *b == n) => {
            check_sequence(el, &[("field", 1, Some(1)), ("value", 1, Some(1))])
        }
        other => Err(not_expected(other, ALL_OPS)),
    }
}

/// Builds a filter from a schema-valid `<filter>` child.
pub fn filter_from_xml(def: &ObjectDef, el: &Element) -> Result<Filter, FilterError> {
    let values = || {
        el.children
            .iter()
            .filter(|c| c.name == "value")
            .map(|c| c.text.clone())
            .collect::<Vec<_>>()
    };
    let field = || field_idx(def, el.child_text("field").unwrap_or(""));
    Ok(match el.name.as_str() {
        "and" => Filter::And(
            el.children
                .iter()
                .map(|c| filter_from_xml(def, c))
                .collect::<Result<_, _>>()?,
        ),
        "or" => Filter::Or(
            el.children
                .iter()
                .map(|c| filter_from_xml(def, c))
                .collect::<Result<_, _>>()?,
        ),
        "isnull" => Filter::Cmp {
            field: field()?,
            op: Op::IsNull,
            values: vec![],
            lits: vec![],
        },
        "isnotnull" => Filter::Cmp {
            field: field()?,
            op: Op::IsNotNull,
            values: vec![],
            lits: vec![],
        },
        "between" => Filter::Cmp {
            field: field()?,
            op: Op::Between,
            values: values(),
            lits: vec![],
        },
        "in" => Filter::Cmp {
            field: field()?,
            op: Op::In,
            values: values(),
            lits: vec![],
        },
        "notin" => Filter::Cmp {
            field: field()?,
            op: Op::NotIn,
            values: values(),
            lits: vec![],
        },
        n => {
            let op = BINARY
                .iter()
                .find(|(b, _)| *b == n)
                .map(|(_, o)| *o)
                .ok_or_else(|| FilterError(format!("Unknown filter operator {n}")))?;
            Filter::Cmp {
                field: field()?,
                op,
                values: values(),
                lits: vec![],
            }
        }
    })
}
