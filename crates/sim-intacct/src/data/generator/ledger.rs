//! The general ledger: the chart of accounts, reporting periods, journal entry lines and the period
//! balances, which chain (each period opens with the previous period's ending balance).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Generator, Kind, RowOut, bool_s, mix, money};
use crate::clock::{fmt_date, fmt_ts};

/// English month names, as Intacct spells them in period names ("Month Ended January 2026").
pub(crate) const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const BOOK: &str = "ACCRUAL";

/// Account ranges of the chart: (first number, title stem, balancesheet?, normal debit?).
const ACCOUNT_GROUPS: &[(u32, &str, bool, bool)] = &[
    (1000, "Cash", true, true),
    (1200, "Accounts Receivable", true, true),
    (1500, "Fixed Assets", true, true),
    (2000, "Accounts Payable", true, false),
    (2500, "Accrued Liabilities", true, false),
    (3000, "Equity", true, false),
    (4000, "Revenue", false, false),
    (5000, "Cost of Sales", false, true),
    (6000, "Operating Expenses", false, true),
    (7000, "Other Expenses", false, true),
];

impl Generator {
    pub(super) fn balance_stamp(&self, idx: u64) -> NaiveDateTime {
        let (p, ..) = self.balance_coords(idx);
        let end = self.period_end(p);
        let t = end + Duration::days(1) + Duration::hours(2);
        // The current (still open) period keeps changing; closed ones were stamped once at close.
        if t > self.start {
            self.start - Duration::hours(1)
        } else {
            t
        }
    }

    pub fn account(&self, i: u64) -> (String, String, bool, bool) {
        let n = self.count(Kind::GlAccount).max(1);
        let groups = ACCOUNT_GROUPS.len() as u64;
        let g = (i * groups / n) as usize;
        let (base, stem, bs, debit) = ACCOUNT_GROUPS[g.min(ACCOUNT_GROUPS.len() - 1)];
        let within = i - (g as u64 * n).div_ceil(groups);
        let no = base as u64 + within * 10;
        let title = if within == 0 {
            stem.to_string()
        } else {
            format!("{stem} - {}", within + 1)
        };
        (no.to_string(), title, bs, debit)
    }

    /// Index of period `p` (0 = oldest) → (year, month) of the month it ends.
    pub(super) fn period_month(&self, p: u64) -> (i32, u32) {
        let periods = self.size.periods.max(1) as i64;
        // The last period is the month before the clock's month.
        let months0 =
            self.start.year() as i64 * 12 + self.start.month0() as i64 - periods + p as i64;
        ((months0 / 12) as i32, (months0 % 12) as u32 + 1)
    }

    pub fn period_name(&self, p: u64) -> String {
        let (y, m) = self.period_month(p);
        format!("Month Ended {} {y}", MONTHS[(m - 1) as usize])
    }

    pub fn period_index(&self, name: &str) -> Option<u64> {
        (0..self.size.periods).find(|p| self.period_name(*p).eq_ignore_ascii_case(name.trim()))
    }

    pub(super) fn period_end(&self, p: u64) -> NaiveDateTime {
        let (y, m) = self.period_month(p);
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        NaiveDate::from_ymd_opt(ny, nm, 1)
            .and_then(|d| d.pred_opt())
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .unwrap_or(self.start)
    }

    /// idx → (period, account, department, location)
    pub fn balance_coords(&self, idx: u64) -> (u64, u64, u64, u64) {
        let a = self.count(Kind::GlAccount).max(1);
        let d = self.count(Kind::Department).max(1);
        let l = self.count(Kind::Location).max(1);
        let combos = a * d * l;
        let p = idx / combos;
        let r = idx % combos;
        (p, r / (d * l), (r / l) % d, r % l)
    }

    /// Activity of one account/department/location in one period, in cents: (debits, credits).
    pub fn balance_activity(&self, p: u64, a: u64, d: u64, l: u64) -> (i64, i64) {
        let key = ((a * 1000 + d) * 100 + l) * 1000 + p;
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, Kind::GlAccountBalance, key, 5));
        if rng.random::<f64>() < 0.3 {
            return (0, 0);
        }
        let (_, _, _, debit_normal) = self.account(a);
        let big = rng.random_range(0..2_500_000i64);
        let small = rng.random_range(0..600_000i64);
        if debit_normal {
            (big, small)
        } else {
            (small, big)
        }
    }

    pub(super) fn balance_opening(&self, a: u64, d: u64, l: u64) -> i64 {
        let (_, _, bs, debit) = self.account(a);
        if !bs {
            return 0;
        }
        let key = (a * 1000 + d) * 100 + l;
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, Kind::GlAccountBalance, key, 6));
        let v = rng.random_range(0..10_000_000i64);
        if debit { v } else { -v }
    }

    /// (OPENBAL, TOTDEBIT, TOTCREDIT, ENDBAL) in cents; ENDBAL = OPENBAL + TOTDEBIT - TOTCREDIT and each
    /// period opens with the previous period's ending balance.
    pub fn balance(&self, p: u64, a: u64, d: u64, l: u64) -> (i64, i64, i64, i64) {
        let mut open = self.balance_opening(a, d, l);
        for q in 0..p {
            let (dr, cr) = self.balance_activity(q, a, d, l);
            open += dr - cr;
        }
        let (dr, cr) = self.balance_activity(p, a, d, l);
        (open, dr, cr, open + dr - cr)
    }

    pub(super) fn gl_account_row(&self, o: &mut RowOut<'_>, idx: u64) {
        let (no, title, bs, debit) = self.account(idx);
        o.set("ACCOUNTNO", no);
        o.set("TITLE", title);
        o.set(
            "ACCOUNTTYPE",
            if bs {
                "balancesheet"
            } else {
                "incomestatement"
            },
        );
        o.set("NORMALBALANCE", if debit { "debit" } else { "credit" });
        o.set(
            "CLOSINGTYPE",
            if bs {
                "non-closing account"
            } else {
                "closing account"
            },
        );
        o.set(
            "CATEGORY",
            ACCOUNT_GROUPS[(idx as usize * ACCOUNT_GROUPS.len()
                / self.count(Kind::GlAccount).max(1) as usize)
                .min(ACCOUNT_GROUPS.len() - 1)]
            .1,
        );
        o.set("REQUIREDEPT", bool_s(!bs));
        o.set("REQUIRELOC", bool_s(!bs));
        o.set("REPORTING_GROUP", if bs { "Balance Sheet" } else { "P&L" });
        o.set("STATUS", "active");
    }

    pub(super) fn gl_entry_row(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
        let nloc = self.count(Kind::Location).max(1);
        let batch = idx / 4 + 1;
        o.set("BATCHNO", batch.to_string());
        o.set("LINE_NO", (idx % 4 + 1).to_string());
        o.set("TR_TYPE", if idx.is_multiple_of(2) { "1" } else { "-1" });
        let day = self
            .txn_date(Kind::GlEntry, idx)
            .unwrap_or(self.start.date());
        o.set("ENTRY_DATE", fmt_date(day));
        let amt = money((mix(self.seed, Kind::GlEntry, batch, 4) % 5_000_000) as i64 + 100);
        o.set("AMOUNT", amt.clone());
        o.set("TRX_AMOUNT", amt);
        o.set(
            "ACCOUNTNO",
            self.account(rng.random_range(0..self.count(Kind::GlAccount).max(1)))
                .0,
        );
        o.set(
            "DEPARTMENT",
            self.department(rng.random_range(0..self.count(Kind::Department).max(1)))
                .0,
        );
        o.set("LOCATION", self.location(rng.random_range(0..nloc)).0);
        o.set("CURRENCY", "USD");
        o.set("BASECURR", "USD");
        o.set("DESCRIPTION", format!("Journal entry {batch}"));
        o.set("STATE", "Posted");
    }

    pub(super) fn balance_row(&self, o: &mut RowOut<'_>, idx: u64) {
        let (p, a, d, l) = self.balance_coords(idx);
        let (no, title, ..) = self.account(a);
        let (did, dname) = self.department(d);
        let (lid, lname) = self.location(l);
        let (open, dr, cr, end) = self.balance(p, a, d, l);
        o.set("PERIOD", self.period_name(p));
        o.set("BOOKID", BOOK);
        o.set("CURRENCY", "USD");
        o.set("ACCOUNTNO", no);
        o.set("ACCOUNTTITLE", title);
        o.set("ACCOUNTREC", (a + 1).to_string());
        o.set("DEPARTMENTID", did);
        o.set("DEPARTMENTNAME", dname);
        o.set("LOCATIONID", lid);
        o.set("LOCATIONNAME", lname);
        o.set("OPENBAL", money(open));
        o.set("TOTDEBIT", money(dr));
        o.set("TOTCREDIT", money(cr));
        o.set("TOTADJDEBIT", money(0));
        o.set("TOTADJCREDIT", money(0));
        o.set("FORBAL", money(dr - cr));
        o.set("ENDBAL", money(end));
        let stamp = self.balance_stamp(idx);
        o.set("WHENCREATED", fmt_ts(stamp));
        o.set("WHENMODIFIED", fmt_ts(stamp));
    }
}
