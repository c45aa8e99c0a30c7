//! The filter tree that both the `query` filter element and readByQuery's query string parse into,
//! with each literal parsed once for its field's type.

use crate::data::{ObjectDef, Val};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Between,
    In,
    NotIn,
    Like,
    NotLike,
    IsNull,
    IsNotNull,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    /// `lits` are the values parsed once for the field's type (filled by [`prepare`]).
    Cmp {
        field: usize,
        op: Op,
        values: Vec<String>,
        lits: Vec<Val<'static>>,
    },
}

/// Parses every literal once for its field's type, so evaluation over many rows does not re-parse.
pub fn prepare(f: &mut Filter, def: &ObjectDef) {
    match f {
        Filter::And(xs) | Filter::Or(xs) => xs.iter_mut().for_each(|x| prepare(x, def)),
        Filter::Not(x) => prepare(x, def),
        Filter::Cmp {
            field,
            values,
            lits,
            ..
        } => {
            let ty = def.fields[*field].ty;
            *lits = values
                .iter()
                .map(|v| Val::parse(ty, v).into_owned())
                .collect();
        }
    }
}

/// A filter error the gateway reports as a function failure (unknown field, bad syntax).
#[derive(Clone, Debug, PartialEq)]
pub struct FilterError(pub String);

impl Val<'_> {
    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Int(i) => Val::Int(i),
            Val::Dec(d) => Val::Dec(d),
            Val::Date(d) => Val::Date(d),
            Val::Ts(t) => Val::Ts(t),
            Val::Bool(b) => Val::Bool(b),
            Val::Str(s) => Val::Str(std::borrow::Cow::Owned(s.into_owned())),
        }
    }
}

pub(super) fn field_idx(def: &ObjectDef, name: &str) -> Result<usize, FilterError> {
    def.field_index(name.trim()).ok_or_else(|| {
        FilterError(format!(
            "Invalid field '{}' in query filter for object {}",
            name.trim(),
            def.name
        ))
    })
}
