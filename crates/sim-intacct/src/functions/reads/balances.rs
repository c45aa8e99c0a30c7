//! get_accountbalances: period balances per account, summed over departments and locations.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(in crate::functions) fn account_balances(
    state: &Arc<State>,
    period: Option<String>,
    enddate: Option<Element>,
    from_acct: Option<String>,
    to_acct: Option<String>,
    glaccountno: Option<String>,
    locationid: Option<String>,
    departmentid: Option<String>,
    showzero: bool,
    book: &str,
) -> Outcome {
    let store = state.store.read().expect("store lock");
    let generator = store.gen_ref().clone();
    drop(store);
    let p = match (&period, &enddate) {
        (Some(name), _) => generator.period_index(name),
        (None, Some(e)) => {
            let (y, m) = (
                e.child_text("year").unwrap_or("").trim().to_string(),
                e.child_text("month").unwrap_or("").trim().to_string(),
            );
            (0..generator.size.periods).find(|p| {
                let n = generator.period_name(*p);
                n.ends_with(&y)
                    && month_number(&n)
                        .is_some_and(|mm| mm.to_string() == m.trim_start_matches('0'))
            })
        }
        _ => None,
    };
    let Some(p) = p else {
        return Outcome::fail(vec![ErrorItem::new(
            "GL-0493",
            "",
            &format!(
                "Invalid reporting period {} {}",
                period.unwrap_or_default(),
                sid(state)
            ),
            "Use an existing reporting period name such as 'Month Ended January 2026'.",
        )]);
    };
    if !book.eq_ignore_ascii_case("ACCRUAL") {
        return Outcome::data(0, |x| {
            x.empty_attrs("data", &[("listtype", "accountbalance"), ("count", "0")]);
        });
    }
    let accts = generator.count(Kind::GlAccount);
    let nd = generator.count(Kind::Department).max(1);
    let nl = generator.count(Kind::Location).max(1);
    let mut rows = Vec::new();
    for a in 0..accts {
        let (no, ..) = generator.account(a);
        let n: u64 = no.parse().unwrap_or(0);
        if glaccountno.as_ref().is_some_and(|g| g.trim() != no)
            || from_acct
                .as_ref()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|f| n < f)
            || to_acct
                .as_ref()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|t| n > t)
        {
            continue;
        }
        let (mut open, mut dr, mut cr, mut end) = (0i64, 0i64, 0i64, 0i64);
        for d in 0..nd {
            if departmentid
                .as_ref()
                .is_some_and(|x| *x != generator.department(d).0)
            {
                continue;
            }
            for l in 0..nl {
                if locationid
                    .as_ref()
                    .is_some_and(|x| x != generator.location(l).0)
                {
                    continue;
                }
                let (o, dd, cc, e) = generator.balance(p, a, d, l);
                open += o;
                dr += dd;
                cr += cc;
                end += e;
            }
        }
        if !showzero && open == 0 && dr == 0 && cr == 0 {
            continue;
        }
        let m = |c: i64| rust_decimal::Decimal::new(c, 2).to_string();
        rows.push(vec![
            ("glaccountno", no),
            ("startbalance", m(open)),
            ("debits", m(dr)),
            ("credits", m(cr)),
            ("adjdebits", m(0)),
            ("adjcredits", m(0)),
            ("endbalance", m(end)),
            ("currency", "USD".to_string()),
            ("reportingbook", "ACCRUAL".to_string()),
        ]);
    }
    let count = rows.len();
    Outcome::data(count, move |x| {
        let c = count.to_string();
        x.open_attrs(
            "data",
            &[("listtype", "accountbalance"), ("count", c.as_str())],
        );
        for r in &rows {
            x.open("accountbalance");
            for (k, v) in r {
                x.leaf(k, v);
            }
            x.close("accountbalance");
        }
        x.close("data");
    })
}

fn month_number(period_name: &str) -> Option<u32> {
    crate::data::generator::MONTHS
        .iter()
        .position(|m| period_name.contains(m))
        .map(|i| i as u32 + 1)
}
