//! Document rows: AP bills and payments (a year of them, oldest first) and the audit history of
//! records deleted before the simulator started.

use chrono::Duration;
use rand::Rng;
use rand::rngs::SmallRng;

use super::names::{NOUN, TERMS};
use super::{Generator, Kind, RowOut, money, pick};
use crate::clock::{fmt_date, fmt_ts};

impl Generator {
    pub(super) fn ap_bill(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
        let nv = self.count(Kind::Vendor).max(1);
        let v = rng.random_range(0..nv);
        // The bill date is WHENCREATED (a DATE on transaction objects).
        let date = self
            .txn_date(Kind::ApBill, idx)
            .unwrap_or(self.start.date());
        let total = rng.random_range(2_000..2_500_000i64);
        let r: f64 = rng.random();
        let (state, paid) = if r < 0.05 {
            ("Draft", 0)
        } else if r < 0.55 {
            ("Paid", total)
        } else if r < 0.65 {
            ("Partially Paid", total / 2)
        } else {
            ("Posted", 0)
        };
        o.set("RECORDID", format!("INV-{}", 10_000 + idx));
        o.set("VENDORID", self.vendor_id(v));
        o.set("VENDORNAME", self.vendor_name(v));
        o.set("STATE", state);
        o.set("DESCRIPTION", format!("{} services", pick(rng, NOUN)));
        o.set("WHENCREATED", fmt_date(date));
        o.set("WHENPOSTED", fmt_date(date));
        o.set("WHENDUE", fmt_date(date + Duration::days(30)));
        if paid == total {
            o.set(
                "WHENPAID",
                fmt_date(date + Duration::days(rng.random_range(5..45))),
            );
        }
        o.set("TOTALENTERED", money(total));
        o.set("TOTALPAID", money(paid));
        o.set("TOTALDUE", money(total - paid));
        o.set("CURRENCY", "USD");
        o.set("BASECURR", "USD");
        o.set(
            "MODULEKEY",
            if rng.random::<f64>() < 0.15 {
                "9.PO"
            } else {
                "3.AP"
            },
        );
        o.set("TERMNAME", pick(rng, TERMS).to_string());
    }

    pub(super) fn ap_payment(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
        let nv = self.count(Kind::Vendor).max(1);
        let v = rng.random_range(0..nv);
        let date = self
            .txn_date(Kind::ApPymt, idx)
            .unwrap_or(self.start.date());
        o.set("VENDORID", self.vendor_id(v));
        o.set("VENDORNAME", self.vendor_name(v));
        o.set(
            "FINANCIALENTITY",
            pick(rng, &["BOA-OPERATING", "CHASE-PAYROLL"]).to_string(),
        );
        o.set(
            "PAYMENTMETHOD",
            pick(rng, &["Printed Check", "EFT", "ACH", "ACH"]).to_string(),
        );
        o.set("PAYMENTDATE", fmt_date(date));
        o.set(
            "STATE",
            pick(
                rng,
                &[
                    "Complete", "Complete", "Complete", "Approved", "Voided", "Draft",
                ],
            )
            .to_string(),
        );
        o.set("DOCNUMBER", format!("{}", 40_000 + idx));
        o.set("TOTALENTERED", money(rng.random_range(2_000..2_500_000i64)));
        o.set("CURRENCY", "USD");
        o.set("WHENCREATED", fmt_date(date));
    }

    pub(super) fn audit_history_row(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
        // Seeded deletions of records whose RECORDNOs lie past the generated range (so they are gone).
        let (obj, base, n) = match idx % 3 {
            0 => ("vendor", 1, self.count(Kind::Vendor)),
            1 => ("apbill", 1001, self.count(Kind::ApBill)),
            _ => ("customer", 1, self.count(Kind::Customer)),
        };
        let key = base + n + idx / 3;
        // OBJECTKEY is the object's unique name field (`ObjectDef::audit_key_field` gives the
        // source): the business ID of a vendor or a customer, `RECORDNO--REC` for a bill.
        let object_key = match obj {
            "vendor" => self.vendor_id(key - base),
            "customer" => format!("C{:05}", key - base + 1),
            _ => format!("{key}--REC"),
        };
        o.set("OBJECTTYPE", obj);
        o.set("OBJECTKEY", object_key);
        o.set("OBJECTDESC", format!("{} {key}", obj));
        o.set("USERID", self.user_id.clone());
        o.set("ACCESSMODE", "D");
        let t = self.start - Duration::seconds(rng.random_range(3600..30 * 86_400));
        o.set("ACCESSTIME", fmt_ts(t));
        o.set("SOURCE", pick(rng, &["api", "ui"]).to_string());
    }
}
