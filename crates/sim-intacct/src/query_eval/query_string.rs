//! readByQuery's `<query>` string: a small SQL-like language (AND/OR/NOT, comparisons, IN, LIKE,
//! IS NULL) whose validated-list values are written in database characters.

use super::filter::{Filter, FilterError, Op, field_idx, prepare};
use crate::data::{FieldType, ObjectDef};

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
}
