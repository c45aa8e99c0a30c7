//! Filters and ordering: the readByQuery query-string language, the `query` filter tree, typed
//! comparisons (timestamps compare as date-times, amounts as decimals) and Oracle-like ordering.

use std::cmp::Ordering;

use crate::data::{FieldType, ObjectDef, RowRef, Val};
use crate::xml_in::{Element, XmlError, check_sequence, not_expected};

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

/// Compares two non-null values; `None` when they are of different kinds.
fn cmp_vals(a: &Val<'_>, b: &Val<'_>, ci: bool) -> Option<Ordering> {
    use rust_decimal::Decimal;
    Some(match (a, b) {
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Int(x), Val::Dec(y)) => Decimal::from(*x).cmp(y),
        (Val::Dec(x), Val::Int(y)) => x.cmp(&Decimal::from(*y)),
        (Val::Dec(x), Val::Dec(y)) => x.cmp(y),
        (Val::Date(x), Val::Date(y)) => x.cmp(y),
        (Val::Ts(x), Val::Ts(y)) => x.cmp(y),
        (Val::Date(x), Val::Ts(y)) => x.and_hms_opt(0, 0, 0)?.cmp(y),
        (Val::Ts(x), Val::Date(y)) => x.cmp(&y.and_hms_opt(0, 0, 0)?),
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => {
            if ci {
                x.to_lowercase().cmp(&y.to_lowercase())
            } else {
                x.as_ref().cmp(y.as_ref())
            }
        }
        _ => return None,
    })
}

/// SQL LIKE with `%` and `_`.
pub fn like(text: &str, pattern: &str, ci: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if ci {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    // Iterative matcher with backtracking on the last '%'.
    let (mut ti, mut pi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            ti += 1;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

/// Evaluates a filter on a row. Comparisons with NULL are false (SQL semantics).
pub fn eval(f: &Filter, row: &RowRef<'_>, ci: bool) -> bool {
    match f {
        Filter::And(xs) => xs.iter().all(|x| eval(x, row, ci)),
        Filter::Or(xs) => xs.iter().any(|x| eval(x, row, ci)),
        Filter::Not(x) => !eval(x, row, ci),
        Filter::Cmp {
            field,
            op,
            values,
            lits,
        } => {
            let def = row.def.fields[*field];
            let v = row.val(*field);
            match op {
                Op::IsNull => return v == Val::Null,
                Op::IsNotNull => return v != Val::Null,
                _ => {}
            }
            if v == Val::Null {
                return false;
            }
            // Compares the row value with literal `i` (parsed once by `prepare`, or here as a fallback).
            let cmp = |i: usize| -> Option<Ordering> {
                let s = values.get(i).map(String::as_str).unwrap_or("");
                let parsed;
                let l = match lits.get(i) {
                    Some(l) => l,
                    None => {
                        parsed = Val::parse(def.ty, s);
                        &parsed
                    }
                };
                cmp_vals(&v, l, ci).or_else(|| {
                    // Kinds differ (e.g. a non-date literal on a DATE field): compare the rendered text.
                    let t = row.text(*field);
                    Some(if ci {
                        t.to_lowercase().cmp(&s.to_lowercase())
                    } else {
                        t.cmp(s)
                    })
                })
            };
            let first = values.first().map(String::as_str).unwrap_or("");
            match op {
                Op::Like => like(row.text(*field), first, ci),
                Op::NotLike => !like(row.text(*field), first, ci),
                _ => compare_holds(*op, values.len(), cmp),
            }
        }
    }
}

/// Whether an ordering operator holds of a non-null value, given how it compares with literal `i`
/// (`None`: not comparable). Shared with the query planner so both read the operators the same way.
/// Like, NotLike, IsNull and IsNotNull are not ordering operators: false.
pub fn compare_holds(op: Op, n_values: usize, cmp: impl Fn(usize) -> Option<Ordering>) -> bool {
    match op {
        Op::Eq => cmp(0) == Some(Ordering::Equal),
        Op::Ne => cmp(0).is_some_and(|o| o != Ordering::Equal),
        Op::Lt => cmp(0) == Some(Ordering::Less),
        Op::Le => matches!(cmp(0), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => cmp(0) == Some(Ordering::Greater),
        Op::Ge => matches!(cmp(0), Some(Ordering::Greater | Ordering::Equal)),
        Op::Between => {
            matches!(cmp(0), Some(Ordering::Greater | Ordering::Equal))
                && matches!(cmp(1), Some(Ordering::Less | Ordering::Equal))
        }
        Op::In => (0..n_values).any(|i| cmp(i) == Some(Ordering::Equal)),
        Op::NotIn => (0..n_values).all(|i| cmp(i).is_some_and(|o| o != Ordering::Equal)),
        Op::Like | Op::NotLike | Op::IsNull | Op::IsNotNull => false,
    }
}

/// Oracle's default ordering: NULLs last when ascending, first when descending.
pub fn order_cmp(a: &[Val<'static>], b: &[Val<'static>], desc: &[bool], ci: bool) -> Ordering {
    for ((x, y), d) in a.iter().zip(b).zip(desc) {
        let o = match (x, y) {
            (Val::Null, Val::Null) => Ordering::Equal,
            (Val::Null, _) => Ordering::Greater,
            (_, Val::Null) => Ordering::Less,
            _ => cmp_vals(x, y, ci).unwrap_or(Ordering::Equal),
        };
        let o = if *d { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn field_idx(def: &ObjectDef, name: &str) -> Result<usize, FilterError> {
    def.field_index(name.trim()).ok_or_else(|| {
        FilterError(format!(
            "Invalid field '{}' in query filter for object {}",
            name.trim(),
            def.name
        ))
    })
}

// ---------------------------------------------------------------- query (structured filter) ----

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

// ------------------------------------------------------------ readByQuery (query string) ----

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Sym(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, FilterError> {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut v = String::new();
            i += 1;
            loop {
                match cs.get(i) {
                    None => return Err(FilterError("unterminated string literal in query".into())),
                    Some('\\') if cs.get(i + 1) == Some(&'\'') => {
                        v.push('\'');
                        i += 2;
                    }
                    Some('\'') if cs.get(i + 1) == Some(&'\'') => {
                        v.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        v.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(v));
        } else if c == '(' {
            out.push(Tok::LParen);
            i += 1;
        } else if c == ')' {
            out.push(Tok::RParen);
            i += 1;
        } else if c == ',' {
            out.push(Tok::Comma);
            i += 1;
        } else if "<>=!".contains(c) {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let sym = match two.as_str() {
                "<=" => "<=",
                ">=" => ">=",
                "<>" | "!=" => "!=",
                _ => match c {
                    '<' => "<",
                    '>' => ">",
                    '=' => "=",
                    _ => return Err(FilterError(format!("unexpected character '{c}' in query"))),
                },
            };
            i += sym.len().min(if two == "<>" { 2 } else { sym.len() });
            out.push(Tok::Sym(sym));
        } else if c.is_ascii_digit()
            || (c == '-' && cs.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let st = i;
            i += 1;
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(cs[st..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' {
            let st = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_' || cs[i] == '.') {
                i += 1;
            }
            out.push(Tok::Ident(cs[st..i].iter().collect()));
        } else {
            return Err(FilterError(format!("unexpected character '{c}' in query")));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    def: &'a ObjectDef,
}

impl Parser<'_> {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.peek_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expr(&mut self) -> Result<Filter, FilterError> {
        let mut xs = vec![self.term()?];
        while self.eat_kw("OR") {
            xs.push(self.term()?);
        }
        Ok(if xs.len() == 1 {
            xs.pop().expect("one")
        } else {
            Filter::Or(xs)
        })
    }
    fn term(&mut self) -> Result<Filter, FilterError> {
        let mut xs = vec![self.factor()?];
        while self.eat_kw("AND") {
            xs.push(self.factor()?);
        }
        Ok(if xs.len() == 1 {
            xs.pop().expect("one")
        } else {
            Filter::And(xs)
        })
    }
    fn factor(&mut self) -> Result<Filter, FilterError> {
        if self.eat_kw("NOT") {
            return Ok(Filter::Not(Box::new(self.factor()?)));
        }
        if self.toks.get(self.pos) == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.expr()?;
            if self.next() != Some(Tok::RParen) {
                return Err(FilterError("missing ')' in query".into()));
            }
            return Ok(e);
        }
        let name = match self.next() {
            Some(Tok::Ident(n)) => n,
            other => {
                return Err(FilterError(format!(
                    "expected a field name in query, found {other:?}"
                )));
            }
        };
        if name.eq_ignore_ascii_case("rownum") {
            // `rownum = 1` limits rows on custom objects; accepted and ignored here.
            let _ = self.next();
            let _ = self.value()?;
            return Ok(Filter::And(vec![]));
        }
        let field = field_idx(self.def, &name)?;
        let fdef = self.def.fields[field];
        if self.eat_kw("IS") {
            let not = self.eat_kw("NOT");
            if !self.eat_kw("NULL") {
                return Err(FilterError("expected NULL after IS".into()));
            }
            return Ok(Filter::Cmp {
                field,
                op: if not { Op::IsNotNull } else { Op::IsNull },
                values: vec![],
                lits: vec![],
            });
        }
        let negated = self.eat_kw("NOT");
        if self.eat_kw("LIKE") {
            let v = self.value()?;
            return Ok(Filter::Cmp {
                field,
                op: if negated { Op::NotLike } else { Op::Like },
                values: vec![v],
                lits: vec![],
            });
        }
        if self.eat_kw("IN") {
            if self.next() != Some(Tok::LParen) {
                return Err(FilterError("expected '(' after IN".into()));
            }
            let mut vals = vec![db_to_display(fdef, self.value()?)];
            loop {
                match self.next() {
                    Some(Tok::Comma) => vals.push(db_to_display(fdef, self.value()?)),
                    Some(Tok::RParen) => break,
                    _ => return Err(FilterError("expected ',' or ')' in IN list".into())),
                }
            }
            return Ok(Filter::Cmp {
                field,
                op: if negated { Op::NotIn } else { Op::In },
                values: vals,
                lits: vec![],
            });
        }
        if negated {
            return Err(FilterError("expected LIKE or IN after NOT".into()));
        }
        let op = match self.next() {
            Some(Tok::Sym("=")) => Op::Eq,
            Some(Tok::Sym("!=")) => Op::Ne,
            Some(Tok::Sym("<")) => Op::Lt,
            Some(Tok::Sym("<=")) => Op::Le,
            Some(Tok::Sym(">")) => Op::Gt,
            Some(Tok::Sym(">=")) => Op::Ge,
            other => {
                return Err(FilterError(format!(
                    "expected an operator after {name}, found {other:?}"
                )));
            }
        };
        let v = self.value()?;
        Ok(Filter::Cmp {
            field,
            op,
            values: vec![db_to_display(fdef, v)],
            lits: vec![],
        })
    }
    fn value(&mut self) -> Result<String, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) | Some(Tok::Num(s)) => Ok(s),
            other => Err(FilterError(format!(
                "expected a value in query, found {other:?}"
            ))),
        }
    }
}

/// readByQuery strings use database characters for validated lists ('T' for active...).
fn db_to_display(f: crate::data::FieldDef, v: String) -> String {
    if f.ty == FieldType::Boolean {
        return match v.as_str() {
            "T" => "true".into(),
            "F" => "false".into(),
            _ => v,
        };
    }
    f.valid
        .iter()
        .find(|(db, _)| *db == v)
        .map(|(_, d)| d.to_string())
        .unwrap_or(v)
}

/// Parses a readByQuery `<query>` string; empty means no filter.
pub fn parse_query_string(def: &ObjectDef, s: &str) -> Result<Option<Filter>, FilterError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        toks: tokenize(s)?,
        pos: 0,
        def,
    };
    let mut f = p.expr()?;
    prepare(&mut f, def);
    if p.pos != p.toks.len() {
        return Err(FilterError(format!(
            "unexpected text after position {} in query",
            p.pos
        )));
    }
    Ok(Some(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::object_def;

    #[test]
    fn like_handles_wildcards_and_case() {
        assert!(like("Summit Office Supply", "S%Supply", false));
        assert!(like("abc", "a_c", false));
        assert!(!like("abc", "A%", false));
        assert!(like("abc", "A%", true));
        assert!(like("a%b", "a%", false));
        assert!(!like("abc", "abcd", false));
        assert!(like("", "%", false));
    }

    #[test]
    fn query_strings_parse_with_db_characters_and_escapes() {
        let def = object_def("VENDOR").unwrap();
        let f = parse_query_string(
            def,
            "STATUS = 'T' AND NAME = 'Jane\\'s Deli' OR RECORDNO IN (1, 2)",
        )
        .unwrap()
        .unwrap();
        let Filter::Or(xs) = f else {
            panic!("OR at the top: {f:?}")
        };
        let Filter::And(ands) = &xs[0] else {
            panic!("AND binds tighter")
        };
        match &ands[0] {
            Filter::Cmp { values, .. } => assert_eq!(values, &["active"]),
            other => panic!("{other:?}"),
        }
        match &ands[1] {
            Filter::Cmp { values, .. } => assert_eq!(values, &["Jane's Deli"]),
            other => panic!("{other:?}"),
        }
        assert!(parse_query_string(def, "").unwrap().is_none());
        assert!(parse_query_string(def, "NOSUCHFIELD = 1").is_err());
        assert!(parse_query_string(def, "RECORDNO = ").is_err());
        assert!(parse_query_string(def, "RECORDNO <> 3 AND WHENMODIFIED IS NOT NULL").is_ok());
    }

    #[test]
    fn nulls_sort_last_ascending_and_first_descending() {
        let a = vec![Val::Null];
        let b = vec![Val::Int(1)];
        assert_eq!(order_cmp(&a, &b, &[false], false), Ordering::Greater);
        assert_eq!(order_cmp(&a, &b, &[true], false), Ordering::Less);
    }
}
