//! The seeded synthetic company. Every row is a pure function of (seed, object, index), so the same
//! seed always yields the same company and a million-row table costs no memory until a row is read.
//!
//! This module holds the seed mixing, the audit columns every row shares and the dispatch to one
//! builder per object family:
//!
//! - `names`: the word lists, and names of vendors, people, locations and departments
//! - `master`: vendors, customers, employees, items, projects, classes, users and the dimensions
//! - `ledger`: the chart of accounts, reporting periods, GL entries and period balances
//! - `documents`: AP bills, AP payments and the audit history of deleted records

mod documents;
mod ledger;
mod master;
mod names;

pub(crate) use ledger::MONTHS;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::defs::{Kind, ObjectDef};
use crate::clock::fmt_ts;
use crate::config::CompanySize;
use names::{DEPARTMENTS, LOCATIONS};

/// Builds rows for every object of one company.
#[derive(Debug, Clone)]
pub struct Generator {
    pub seed: u64,
    pub size: CompanySize,
    pub start: NaiveDateTime,
    pub user_id: String,
}

pub(super) fn mix(seed: u64, kind: Kind, idx: u64, salt: u64) -> u64 {
    // splitmix64 over the combined inputs: cheap, well-distributed, and stable across runs.
    let mut z = seed
        ^ (kind as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ idx.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ salt.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn money(cents: i64) -> String {
    Decimal::new(cents, 2).to_string()
}

pub(super) fn pick<'a, T>(rng: &mut SmallRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

pub(super) fn bool_s(b: bool) -> String {
    if b { "true".into() } else { "false".into() }
}

pub(super) struct RowOut<'d> {
    pub(super) def: &'d ObjectDef,
    pub(super) vals: Vec<String>,
}

impl<'d> RowOut<'d> {
    fn new(def: &'d ObjectDef) -> Self {
        RowOut {
            def,
            vals: vec![String::new(); def.fields.len()],
        }
    }
    pub(super) fn set(&mut self, field: &str, v: impl Into<String>) {
        if let Some(i) = self.def.field_index(field) {
            self.vals[i] = v.into();
        }
    }
}

impl Generator {
    pub fn count(&self, kind: Kind) -> u64 {
        let s = &self.size;
        match kind {
            Kind::Vendor => s.vendors,
            Kind::GlAccount => s.gl_accounts,
            Kind::Department => s.departments.min(DEPARTMENTS.len() as u64 * 10),
            Kind::Location => s.locations.min(LOCATIONS.len() as u64),
            Kind::Class => s.classes,
            Kind::Project => s.projects,
            Kind::Customer => s.customers,
            Kind::Employee => s.employees,
            Kind::Item => s.items,
            Kind::ApBill => s.ap_bills,
            Kind::ApPymt => s.ap_payments,
            Kind::GlEntry => s.gl_entries,
            Kind::GlAccountBalance => {
                s.periods
                    * self.count(Kind::GlAccount)
                    * self.count(Kind::Department).max(1)
                    * self.count(Kind::Location).max(1)
            }
            Kind::AuditHistory => s.audit_deletes,
            // The web services user is always present (readUserFormatting needs its RECORDNO).
            Kind::UserInfo => s.users.max(1),
        }
    }

    pub(super) fn rng(&self, kind: Kind, idx: u64) -> SmallRng {
        SmallRng::seed_from_u64(mix(self.seed, kind, idx, 1))
    }

    /// Seeded bulk-change instants: many records share these seconds, as after an import or a mass update.
    pub(super) fn bulk_instant(&self, k: u64) -> NaiveDateTime {
        let day = 3 + (mix(self.seed, Kind::Vendor, k, 7) % 700) as i64;
        let secs = (mix(self.seed, Kind::Vendor, k, 8) % 36_000) as i64;
        self.start - Duration::days(day) + Duration::seconds(secs) - Duration::hours(8)
    }

    /// (WHENCREATED, WHENMODIFIED) of a generated master-data row. Cheap: used by filters on hot fields.
    pub fn audit_times(&self, kind: Kind, idx: u64) -> (NaiveDateTime, Option<NaiveDateTime>) {
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, kind, idx, 2));
        let span = 3 * 365 * 86_400_i64;
        let created = match self.txn_date(kind, idx) {
            Some(d) => d.and_hms_opt(9, 0, 0).unwrap_or(self.start),
            None => self.start - Duration::seconds(rng.random_range(86_400..span)),
        };
        let r: f64 = rng.random();
        let modified = if r < 0.10 {
            None
        } else if r < 0.45 {
            let k = rng.random_range(0..24u64);
            let b = self.bulk_instant(k);
            Some(if b >= created { b } else { created })
        } else {
            let room = (self.start - created).num_seconds().max(2);
            Some(created + Duration::seconds(rng.random_range(1..room)))
        };
        (created, modified)
    }

    /// When a document was entered (its AUDITWHENCREATED): up to two days after its date, never
    /// after its first modification or the clock's start.
    fn entered(
        &self,
        kind: Kind,
        idx: u64,
        created: NaiveDateTime,
        modified: Option<NaiveDateTime>,
    ) -> NaiveDateTime {
        let lag = Duration::minutes((mix(self.seed, kind, idx, 11) % 2880) as i64);
        (created + lag)
            .min(modified.unwrap_or(self.start))
            .min(self.start)
            .max(created)
    }

    /// Transaction date of APBILL/APPYMT rows: a year of documents spread evenly, oldest first.
    pub fn txn_date(&self, kind: Kind, idx: u64) -> Option<NaiveDate> {
        let n = self.count(kind).max(1);
        let days_back = match kind {
            Kind::ApBill => 365 - (idx * 365 / n) as i64,
            Kind::ApPymt => 360 - (idx * 360 / n) as i64,
            // Lines of one journal entry (four per batch) share its date.
            Kind::GlEntry => 1 + (mix(self.seed, Kind::GlEntry, idx / 4 + 1, 3) % 365) as i64,
            _ => return None,
        };
        Some(self.start.date() - Duration::days(days_back.max(1)))
    }

    /// The owning entity (location index) of a row: about one in five records is private to an entity,
    /// the rest belong to the top level (empty MEGAENTITY* fields). Cheap, like `when_modified`.
    pub fn owner(&self, kind: Kind, idx: u64) -> Option<u64> {
        if matches!(
            kind,
            Kind::Location | Kind::GlAccountBalance | Kind::AuditHistory | Kind::GlAccount
        ) {
            return None;
        }
        let h = mix(self.seed, kind, idx, 10);
        h.is_multiple_of(5)
            .then(|| (h >> 8) % self.count(Kind::Location).max(1))
    }

    /// WHENMODIFIED rendered for a generated row (None = never modified, an empty element).
    pub fn when_modified(&self, kind: Kind, idx: u64) -> Option<NaiveDateTime> {
        match kind {
            Kind::AuditHistory => None,
            Kind::GlAccountBalance => Some(self.balance_stamp(idx)),
            _ => self.audit_times(kind, idx).1,
        }
    }

    /// The complete row `idx` of an object, every field rendered as Intacct does.
    pub fn row(&self, def: &ObjectDef, idx: u64) -> Vec<String> {
        let mut o = RowOut::new(def);
        let mut rng = self.rng(def.kind, idx);
        let recno = def.recno_base + idx;
        o.set(def.key_field, recno.to_string());
        let (created, modified) = self.audit_times(def.kind, idx);
        o.set("WHENCREATED", fmt_ts(created));
        if def.field_index("AUDITWHENCREATED").is_some() {
            o.set(
                "AUDITWHENCREATED",
                fmt_ts(self.entered(def.kind, idx, created, modified)),
            );
        }
        o.set("WHENMODIFIED", modified.map(fmt_ts).unwrap_or_default());
        o.set("CREATEDBY", "1");
        o.set("MODIFIEDBY", if modified.is_some() { "1" } else { "" });
        if let Some(li) = self.owner(def.kind, idx) {
            let (lid, lname) = self.location(li);
            o.set("MEGAENTITYKEY", (li + 1).to_string());
            o.set("MEGAENTITYID", lid);
            o.set("MEGAENTITYNAME", lname);
        }
        o.set(
            "RECORD_URL",
            format!(
                "https://www.intacct.com/ia/acct/ur.phtml?.r={}",
                hex_token(mix(self.seed, def.kind, idx, 9))
            ),
        );
        let active = rng.random::<f64>() < 0.9;
        o.set("STATUS", if active { "active" } else { "inactive" });
        match def.kind {
            Kind::Vendor => self.vendor_row(&mut o, &mut rng, idx),
            Kind::GlAccount => self.gl_account_row(&mut o, idx),
            Kind::Department => self.department_row(&mut o, idx),
            Kind::Location => self.location_row(&mut o, idx, created),
            Kind::Class => self.class_row(&mut o, idx),
            Kind::Project => self.project_row(&mut o, &mut rng, idx, created),
            Kind::Customer => self.customer_row(&mut o, &mut rng, idx),
            Kind::Employee => self.employee_row(&mut o, &mut rng, idx, created, active),
            Kind::Item => self.item_row(&mut o, &mut rng, idx),
            Kind::ApBill => self.ap_bill(&mut o, &mut rng, idx),
            Kind::ApPymt => self.ap_payment(&mut o, &mut rng, idx),
            Kind::GlEntry => self.gl_entry_row(&mut o, &mut rng, idx),
            Kind::GlAccountBalance => self.balance_row(&mut o, idx),
            Kind::AuditHistory => self.audit_history_row(&mut o, &mut rng, idx),
            Kind::UserInfo => self.user_row(&mut o, &mut rng, idx),
        }
        o.vals
    }
}

fn hex_token(x: u64) -> String {
    format!("{x:016x}")
}
