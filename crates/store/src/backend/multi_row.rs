//! Multi-row statements: the text of an `INSERT ... VALUES (..), (..)` or an `IN (..)` list of up
//! to `CHUNK` rows, built once per statement and cached, and a query with room reserved for all
//! its arguments.
//!
//! Staging writes thousands of rows a page, and both were measurable parts of its CPU (see
//! `MultiRow` and `with_room`). Plain code, except `with_room`, which names the back end's sqlx
//! types and so is a macro like the rest of the back end.

/// Rows per multi-row statement: 1000 rows x 18 columns stays under SQLite's 32766 and
/// PostgreSQL's 65535 bind parameters.
pub(crate) const CHUNK: usize = 1000;

/// Text of a multi-row statement: `head`, then `rows` groups of `cols` numbered placeholders from
/// `$first` on (`($1, $2), ($3, $4)` with `group = true`, or a flat `$3, $4` list for `IN (...)`),
/// then `tail`.
///
/// With `anonymous` (SQLite) every placeholder, those written in `head` and `tail` included, is a
/// plain `?` and they are bound in order: sqlx-sqlite resolves a *numbered* placeholder through
/// `sqlite3_bind_parameter_name`, a linear search, which made an 18,000-parameter insert quadratic.
/// So `$n` in `head`/`tail` must appear in the order of their numbers.
///
/// Why not sqlx's `QueryBuilder`: it formats every placeholder anew for every statement, which was
/// ~4 % of the staging CPU (18,000 placeholders per audit chunk). Full chunks, the common case, are
/// built once per statement and kept in `cache`; sqlx then also reuses its prepared statement,
/// which it keys by this text.
pub(crate) struct MultiRow {
    pub head: &'static str,
    /// Number of the first generated placeholder.
    pub first: usize,
    /// Placeholders per row.
    pub cols: usize,
    /// `(..), (..)` groups (VALUES) rather than one flat list (IN).
    pub group: bool,
    pub tail: &'static str,
}

impl MultiRow {
    /// `INSERT ... VALUES ($1, ..), (..)` with `cols` values a row.
    pub(crate) const fn values(head: &'static str, cols: usize) -> Self {
        MultiRow {
            head,
            first: 1,
            cols,
            group: true,
            tail: "",
        }
    }

    /// `... AND record_key IN ($3, $4, ..)`, after `$1` and `$2` in `head`.
    pub(crate) const fn keys_after_two(head: &'static str) -> Self {
        MultiRow {
            head,
            first: 3,
            cols: 1,
            group: false,
            tail: ")",
        }
    }

    pub(crate) const fn with_tail(self, tail: &'static str) -> Self {
        MultiRow { tail, ..self }
    }

    /// The text for `rows` rows.
    pub(crate) fn sql(
        &self,
        cache: &'static std::sync::OnceLock<String>,
        anonymous: bool,
        rows: usize,
    ) -> std::borrow::Cow<'static, str> {
        multi_row_sql(self, cache, anonymous, rows)
    }
}

fn multi_row_sql(
    spec: &MultiRow,
    cache: &'static std::sync::OnceLock<String>,
    anonymous: bool,
    rows: usize,
) -> std::borrow::Cow<'static, str> {
    let MultiRow {
        head,
        first,
        cols,
        group,
        tail,
    } = *spec;
    use std::fmt::Write;
    let fixed = |text: &str| -> String {
        if !anonymous {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(ch) = chars.next() {
            if ch == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                while chars.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                }
                out.push('?');
            } else {
                out.push(ch);
            }
        }
        out
    };
    let build = || {
        let mut sql = String::with_capacity(head.len() + tail.len() + rows * cols * 7);
        sql.push_str(&fixed(head));
        let mut n = first - 1;
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            if group {
                sql.push('(');
            }
            for c in 0..cols {
                if c > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                if anonymous {
                    sql.push('?');
                } else {
                    let _ = write!(sql, "${n}");
                }
            }
            if group {
                sql.push(')');
            }
        }
        sql.push_str(&fixed(tail));
        sql
    };
    if rows == CHUNK {
        std::borrow::Cow::Borrowed(cache.get_or_init(build).as_str())
    } else {
        std::borrow::Cow::Owned(build())
    }
}

macro_rules! impl_with_room {
    ($ty:ident, $db:ty) => {
        impl $ty {
            /// A statement for `sql` with room for `n` arguments. sqlx otherwise grows its argument
            /// list a bind at a time, and for an 18,000-argument insert the reallocations, copies and
            /// page faults of the new memory were ~9 % of the pipeline thread's CPU (BENCHMARKS.md,
            /// "Session 6").
            fn with_room<'q>(
                sql: &'q str,
                n: usize,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                let mut args = <<$db as sqlx::Database>::Arguments<'q> as Default>::default();
                sqlx::Arguments::reserve(&mut args, n, 0);
                sqlx::query_with(sql, args)
            }
        }
    };
}
pub(crate) use impl_with_room;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    #[test]
    fn multi_row_sql_numbers_or_anonymises_every_placeholder() {
        static A: OnceLock<String> = OnceLock::new();
        static B: OnceLock<String> = OnceLock::new();
        let head = "SELECT k FROM t WHERE c = $1 AND s = $2 AND k IN (";
        assert_eq!(
            MultiRow {
                head,
                first: 3,
                cols: 1,
                group: false,
                tail: ")"
            }
            .sql(&A, false, 3),
            "SELECT k FROM t WHERE c = $1 AND s = $2 AND k IN ($3, $4, $5)"
        );
        assert_eq!(
            MultiRow {
                head,
                first: 3,
                cols: 1,
                group: false,
                tail: ") AND x = $5"
            }
            .sql(&B, true, 2),
            "SELECT k FROM t WHERE c = ? AND s = ? AND k IN (?, ?) AND x = ?"
        );
        assert_eq!(
            MultiRow {
                head: "INSERT INTO t (a, b) VALUES ",
                first: 1,
                cols: 2,
                group: true,
                tail: ""
            }
            .sql(&A, false, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
        // A full chunk is built once and then served from the cache.
        let full = MultiRow::values("V ", 1).sql(&B, true, CHUNK);
        assert!(matches!(full, std::borrow::Cow::Borrowed(_)));
        assert_eq!(full.matches('?').count(), CHUNK);
    }
}
