//! The DAX lexer and parser: source text to the expression tree [`super::eval`] runs.

use std::str::FromStr;

use rust_decimal::Decimal;

/// A DAX failure, rendered as the service's 400 DatasetExecuteQueriesError.
#[derive(Debug, PartialEq)]
pub(crate) struct DaxError(pub(crate) String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Column(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, DaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |pos: usize, what: &str| DaxError(format!("Query (1, {}) {what}", pos + 1));
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' => out.push((Tok::LParen, start)),
            ')' => out.push((Tok::RParen, start)),
            '{' => out.push((Tok::LBrace, start)),
            '}' => out.push((Tok::RBrace, start)),
            ',' => out.push((Tok::Comma, start)),
            '\'' | '"' | '[' => {
                let close = if c == '[' { ']' } else { c };
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(err(
                                start,
                                "The syntax is incorrect: unterminated name or string.",
                            ));
                        }
                        Some(&ch) if ch == close => {
                            // A doubled closing character is an escaped one.
                            if chars.get(i + 1) == Some(&close) {
                                s.push(close);
                                i += 2;
                            } else {
                                break;
                            }
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((
                    match c {
                        '\'' => Tok::Quoted(s),
                        '"' => Tok::Str(s),
                        _ => Tok::Column(s),
                    },
                    start,
                ));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                let mut s = String::from(c);
                i += 1;
                while let Some(&d) = chars.get(i) {
                    if d.is_ascii_digit() || d == '.' {
                        s.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((Tok::Num(s), start));
                continue;
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut s = String::new();
                while let Some(&d) = chars.get(i) {
                    if d.is_alphanumeric() || d == '_' || d == '.' {
                        s.push(d);
                        i += 1;
                    } else {
                        break;
                    }
                }
                out.push((Tok::Ident(s), start));
                continue;
            }
            other => {
                return Err(err(
                    start,
                    &format!("The syntax for '{other}' is incorrect."),
                ));
            }
        }
        i += 1;
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Agg {
    Sum,
    Min,
    Max,
    Count,
    DistinctCount,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    CountRows(String),
    Agg(Agg, String, String),
    /// `SUMX('T', LEN('T'[c]))`: the total length of a text column's values.
    SumLen(String, String),
    Number(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TableExpr {
    Row(Vec<(String, Scalar)>),
    Scan(String),
    TopN {
        n: usize,
        table: String,
        order: Vec<(String, String, bool)>,
    },
}

/// Parses a whole query (`EVALUATE ...`).
pub(super) fn parse(query: &str) -> Result<TableExpr, DaxError> {
    Parser {
        toks: lex(query)?,
        pos: 0,
    }
    .query()
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn err(&self, what: &str) -> DaxError {
        let col = self.toks.get(self.pos).map_or(0, |(_, p)| *p) + 1;
        DaxError(format!("Query (1, {col}) {what}"))
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(t, _)| t.clone());
        self.pos += 1;
        t
    }
    fn expect(&mut self, want: &Tok) -> Result<(), DaxError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("The syntax is incorrect: expected {want:?}.")))
        }
    }
    fn keyword(&mut self) -> Option<String> {
        match self.peek() {
            Some(Tok::Ident(s)) => Some(s.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn query(&mut self) -> Result<TableExpr, DaxError> {
        if self.keyword().as_deref() != Some("EVALUATE") {
            return Err(self.err("The syntax is incorrect: a query starts with EVALUATE."));
        }
        self.pos += 1;
        let t = self.table()?;
        if self.pos < self.toks.len() {
            return Err(self.err("The syntax is incorrect: unexpected text after the query."));
        }
        Ok(t)
    }

    fn table_ref(&mut self) -> Result<String, DaxError> {
        match self.next() {
            Some(Tok::Quoted(s)) | Some(Tok::Ident(s)) => Ok(s),
            _ => {
                self.pos -= 1;
                Err(self.err("The syntax is incorrect: a table name was expected."))
            }
        }
    }

    fn col_ref(&mut self) -> Result<(String, String), DaxError> {
        let table = self.table_ref()?;
        match self.next() {
            Some(Tok::Column(c)) => Ok((table, c)),
            _ => {
                self.pos -= 1;
                Err(self.err(
                    "The syntax is incorrect: a column reference 'Table'[Column] was expected.",
                ))
            }
        }
    }

    fn table(&mut self) -> Result<TableExpr, DaxError> {
        if self.peek() == Some(&Tok::LBrace) {
            self.pos += 1;
            let s = self.scalar()?;
            self.expect(&Tok::RBrace)?;
            return Ok(TableExpr::Row(vec![("Value".to_owned(), s)]));
        }
        let kw = self.keyword();
        let is_call = matches!(self.toks.get(self.pos + 1), Some((Tok::LParen, _)));
        match kw.as_deref() {
            Some("ROW") if is_call => {
                self.pos += 2;
                let mut cols = Vec::new();
                loop {
                    let name = match self.next() {
                        Some(Tok::Str(s)) => s,
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("ROW expects a column name string."));
                        }
                    };
                    self.expect(&Tok::Comma)?;
                    cols.push((name, self.scalar()?));
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::RParen) => break,
                        _ => {
                            self.pos -= 1;
                            return Err(self.err("The syntax is incorrect: expected ',' or ')'."));
                        }
                    }
                }
                Ok(TableExpr::Row(cols))
            }
            Some("TOPN") if is_call => {
                self.pos += 2;
                let n = match self.next() {
                    Some(Tok::Num(n)) => n
                        .parse::<usize>()
                        .map_err(|_| self.err("TOPN expects a whole number."))?,
                    _ => {
                        self.pos -= 1;
                        return Err(self.err("TOPN expects a number of rows."));
                    }
                };
                self.expect(&Tok::Comma)?;
                let table = self.table_ref()?;
                let mut order = Vec::new();
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    let (t, c) = self.col_ref()?;
                    // DAX's TOPN orders descending unless told otherwise.
                    let mut asc = false;
                    if self.peek() == Some(&Tok::Comma)
                        && let Some((Tok::Ident(k), _)) = self.toks.get(self.pos + 1)
                        && matches!(k.to_ascii_uppercase().as_str(), "ASC" | "DESC")
                    {
                        asc = k.eq_ignore_ascii_case("ASC");
                        self.pos += 2;
                    }
                    order.push((t, c, asc));
                }
                self.expect(&Tok::RParen)?;
                Ok(TableExpr::TopN { n, table, order })
            }
            _ if is_call => Err(self.err(&format!(
                "The function '{}' is not supported by the simulator.",
                kw.unwrap_or_default()
            ))),
            _ => Ok(TableExpr::Scan(self.table_ref()?)),
        }
    }

    fn scalar(&mut self) -> Result<Scalar, DaxError> {
        if let Some(Tok::Num(n)) = self.peek() {
            let d =
                Decimal::from_str(n).map_err(|_| self.err(&format!("'{n}' is not a number.")))?;
            self.pos += 1;
            return Ok(Scalar::Number(d.normalize().to_string()));
        }
        let kw = self
            .keyword()
            .ok_or_else(|| self.err("An expression was expected."))?;
        self.pos += 1;
        self.expect(&Tok::LParen)?;
        let s = match kw.as_str() {
            "COUNTROWS" => Scalar::CountRows(self.table_ref()?),
            // Only the one SUMX shape the connector's `verify` sends; anything else is refused
            // with the simulator's "not supported" error, never evaluated wrongly.
            "SUMX" => {
                let t = self.table_ref()?;
                self.expect(&Tok::Comma)?;
                if self.keyword().as_deref() != Some("LEN") {
                    return Err(self.err("The simulator supports SUMX(table, LEN(column)) only."));
                }
                self.pos += 1;
                self.expect(&Tok::LParen)?;
                let (ct, c) = self.col_ref()?;
                if !ct.eq_ignore_ascii_case(&t) {
                    return Err(self.err("SUMX's column must be of its table."));
                }
                self.expect(&Tok::RParen)?;
                Scalar::SumLen(t, c)
            }
            "SUM" | "MIN" | "MAX" | "COUNT" | "DISTINCTCOUNT" => {
                let agg = match kw.as_str() {
                    "SUM" => Agg::Sum,
                    "MIN" => Agg::Min,
                    "MAX" => Agg::Max,
                    "COUNT" => Agg::Count,
                    _ => Agg::DistinctCount,
                };
                let (t, c) = self.col_ref()?;
                Scalar::Agg(agg, t, c)
            }
            other => {
                self.pos -= 2;
                return Err(self.err(&format!(
                    "The function '{other}' is not supported by the simulator."
                )));
            }
        };
        self.expect(&Tok::RParen)?;
        Ok(s)
    }
}
