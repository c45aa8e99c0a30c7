//! Evaluation of a filter on a row (SQL semantics for NULL), LIKE patterns, and Oracle's ordering.

use std::cmp::Ordering;

use super::filter::{Filter, Op};
use crate::data::{RowRef, Val};

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn nulls_sort_last_ascending_and_first_descending() {
        let a = vec![Val::Null];
        let b = vec![Val::Int(1)];
        assert_eq!(order_cmp(&a, &b, &[false], false), Ordering::Greater);
        assert_eq!(order_cmp(&a, &b, &[true], false), Ordering::Less);
    }
}
