//! `intacct query --where`: a small, strict filter language for people at a terminal.
//!
//! `FIELD OP 'value' [AND FIELD OP 'value' ...]` with OP one of `= != < <= > >= like`, plus
//! `FIELD is null` / `FIELD is not null`. Values are single-quoted (a quote inside is doubled). Anything
//! else is refused with a message naming the token, rather than sent to Intacct to fail there.

use ml_intacct::Filter;

pub fn parse(text: &str) -> Result<Filter, String> {
    let tokens = tokenize(text)?;
    let mut terms = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let field = match &tokens[i] {
            Tok::Word(w) => w.to_ascii_uppercase(),
            other => return Err(format!("expected a field name, found {other}")),
        };
        let op = tokens
            .get(i + 1)
            .ok_or_else(|| format!("{field}: an operator is missing"))?;
        let (filter, used) = match op {
            Tok::Word(w) if w.eq_ignore_ascii_case("is") => {
                match (tokens.get(i + 2), tokens.get(i + 3)) {
                    (Some(Tok::Word(n)), _) if n.eq_ignore_ascii_case("null") => {
                        (Filter::IsNull(field), 3)
                    }
                    (Some(Tok::Word(n)), Some(Tok::Word(m)))
                        if n.eq_ignore_ascii_case("not") && m.eq_ignore_ascii_case("null") =>
                    {
                        (Filter::IsNotNull(field), 4)
                    }
                    _ => {
                        return Err(format!(
                            "{field} is ...: expected `is null` or `is not null`"
                        ));
                    }
                }
            }
            Tok::Op(o) | Tok::Word(o) => {
                let value = match tokens.get(i + 2) {
                    Some(Tok::Value(v)) => v.clone(),
                    _ => {
                        return Err(format!(
                            "{field} {o}: expected a quoted value such as 'active'"
                        ));
                    }
                };
                let f = match o.to_ascii_lowercase().as_str() {
                    "=" => Filter::EqualTo(field, value),
                    "!=" | "<>" => Filter::NotEqualTo(field, value),
                    "<" => Filter::LessThan(field, value),
                    "<=" => Filter::LessThanOrEqualTo(field, value),
                    ">" => Filter::GreaterThan(field, value),
                    ">=" => Filter::GreaterThanOrEqualTo(field, value),
                    "like" => Filter::Like(field, value),
                    other => {
                        return Err(format!(
                            "unknown operator {other:?}; use = != < <= > >= like"
                        ));
                    }
                };
                (f, 3)
            }
            Tok::Value(v) => return Err(format!("{field}: expected an operator before '{v}'")),
        };
        terms.push(filter);
        i += used;
        match tokens.get(i) {
            None => break,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") => i += 1,
            Some(other) => return Err(format!("expected AND, found {other}")),
        }
    }
    match terms.len() {
        0 => Err("the filter is empty".into()),
        1 => Ok(terms.pop().expect("one term")),
        _ => Ok(Filter::And(terms)),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Op(String),
    Value(String),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Word(w) | Tok::Op(w) => write!(f, "{w:?}"),
            Tok::Value(v) => write!(f, "'{v}'"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        v.push('\'');
                    }
                    Some('\'') => break,
                    Some(ch) => v.push(ch),
                    None => return Err(format!("unterminated quote in {text:?}")),
                }
            }
            out.push(Tok::Value(v));
        } else if "=!<>".contains(c) {
            let mut op = String::new();
            while let Some(&o) = chars.peek().filter(|o| "=!<>".contains(**o)) {
                op.push(o);
                chars.next();
            }
            out.push(Tok::Op(op));
        } else {
            let mut w = String::new();
            while let Some(&ch) = chars
                .peek()
                .filter(|ch| ch.is_alphanumeric() || "._".contains(**ch))
            {
                w.push(ch);
                chars.next();
            }
            if w.is_empty() {
                return Err(format!("unexpected character {c:?}"));
            }
            out.push(Tok::Word(w));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_operators_and_quotes() {
        assert_eq!(
            parse("status = 'active'"),
            Ok(Filter::EqualTo("STATUS".into(), "active".into()))
        );
        assert_eq!(
            parse("NAME like 'O''Brien%' and TOTALDUE >= '100' AND WHENMODIFIED is not null"),
            Ok(Filter::And(vec![
                Filter::Like("NAME".into(), "O'Brien%".into()),
                Filter::GreaterThanOrEqualTo("TOTALDUE".into(), "100".into()),
                Filter::IsNotNull("WHENMODIFIED".into()),
            ]))
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(
            parse("STATUS = active")
                .unwrap_err()
                .contains("quoted value")
        );
        assert!(parse("STATUS ~ 'x'").is_err());
        assert!(parse("A = 'x' OR B = 'y'").unwrap_err().contains("AND"));
        assert!(parse("A = 'x").unwrap_err().contains("unterminated"));
    }
}
