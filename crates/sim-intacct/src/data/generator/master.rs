//! Master data rows: vendors, customers, employees, items, projects, classes, departments,
//! locations and users.

use chrono::{Duration, NaiveDateTime};
use rand::Rng;
use rand::rngs::SmallRng;

use super::names::{ADJ, CLASSES, NOUN, SUFFIX, TERMS};
use super::{Generator, Kind, RowOut, bool_s, money, pick};
use crate::clock::fmt_date;

impl Generator {
    pub(super) fn vendor_row(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
        o.set("VENDORID", self.vendor_id(idx));
        o.set("NAME", self.vendor_name(idx));
        if idx > 10 && rng.random::<f64>() < 0.05 {
            let parent = rng.random_range(0..10);
            o.set("PARENTKEY", (o.def.recno_base + parent).to_string());
            o.set("PARENTID", self.vendor_id(parent));
        }
        o.set(
            "VENDTYPE",
            pick(
                rng,
                &["Supplier", "Contractor", "Utility", "Service Provider"],
            )
            .to_string(),
        );
        o.set("ONETIME", bool_s(rng.random::<f64>() < 0.03));
        o.set("ONHOLD", bool_s(rng.random::<f64>() < 0.04));
        o.set(
            "TAXID",
            format!(
                "{:02}-{:07}",
                rng.random_range(10..99),
                rng.random_range(0..9_999_999)
            ),
        );
        o.set("APACCOUNT", "2000");
        o.set("TERMNAME", pick(rng, TERMS).to_string());
        o.set("CURRENCY", "USD");
        o.set("CREDITLIMIT", money(rng.random_range(0..50i64) * 100_000));
        o.set("TOTALDUE", money(rng.random_range(0..2_500_000i64)));
        o.set(
            "DISPLAYCONTACT.EMAIL1",
            format!("ap{}@vendor{}.example.com", idx + 1, idx % 97),
        );
        let tier = rng.random_range(0..4);
        // A custom field added after some records existed: those rows have it empty.
        o.set("VENDOR_TIER", ["Gold", "Silver", "Bronze", ""][tier]);
    }

    pub(super) fn department_row(&self, o: &mut RowOut<'_>, idx: u64) {
        let (id, name) = self.department(idx);
        o.set("DEPARTMENTID", id);
        o.set("TITLE", name);
        o.set("SUPERVISORID", format!("E{:04}", idx + 1));
        o.set("STATUS", "active");
    }

    pub(super) fn location_row(&self, o: &mut RowOut<'_>, idx: u64, created: NaiveDateTime) {
        let (id, name) = self.location(idx);
        o.set("LOCATIONID", id);
        o.set("NAME", name);
        o.set("CURRENCY", "USD");
        o.set("STARTDATE", fmt_date(created.date()));
        o.set("STATUS", "active");
    }

    pub(super) fn class_row(&self, o: &mut RowOut<'_>, idx: u64) {
        let name = CLASSES
            .get(idx as usize)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("Class {}", idx + 1));
        o.set("CLASSID", format!("C{:03}", idx + 1));
        o.set("DESCRIPTION", format!("{name} revenue and cost"));
        o.set("NAME", name);
    }

    pub(super) fn project_row(
        &self,
        o: &mut RowOut<'_>,
        rng: &mut SmallRng,
        idx: u64,
        created: NaiveDateTime,
    ) {
        let nloc = self.count(Kind::Location).max(1);
        o.set("PROJECTID", format!("P-{:04}", idx + 1001));
        o.set(
            "NAME",
            format!(
                "{} {}",
                pick(rng, ADJ),
                pick(
                    rng,
                    &[
                        "Implementation",
                        "Migration",
                        "Audit",
                        "Rollout",
                        "Retainer",
                        "Upgrade"
                    ]
                )
            ),
        );
        o.set(
            "PROJECTSTATUS",
            pick(
                rng,
                &[
                    "Draft",
                    "In Progress",
                    "In Progress",
                    "Completed",
                    "On Hold",
                ],
            )
            .to_string(),
        );
        let nc = self.count(Kind::Customer).max(1);
        o.set("CUSTOMERID", format!("C{:05}", rng.random_range(0..nc) + 1));
        o.set("LOCATIONID", self.location(rng.random_range(0..nloc)).0);
        o.set(
            "DEPARTMENTID",
            self.department(rng.random_range(0..self.count(Kind::Department).max(1)))
                .0,
        );
        let begin = created.date();
        o.set("BEGINDATE", fmt_date(begin));
        o.set(
            "ENDDATE",
            fmt_date(begin + Duration::days(rng.random_range(30..400))),
        );
        o.set(
            "BUDGETAMOUNT",
            money(rng.random_range(10..500i64) * 100_000),
        );
    }

    pub(super) fn customer_row(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
        o.set("CUSTOMERID", format!("C{:05}", idx + 1));
        let (_, l) = self.person(Kind::Customer, idx);
        o.set(
            "NAME",
            format!("{l} {} {}", pick(rng, NOUN), pick(rng, SUFFIX)),
        );
        o.set("ONHOLD", bool_s(rng.random::<f64>() < 0.05));
        o.set("ONETIME", bool_s(rng.random::<f64>() < 0.02));
        o.set(
            "CUSTTYPE",
            pick(rng, &["Enterprise", "Mid-Market", "Small Business"]).to_string(),
        );
        o.set("CREDITLIMIT", money(rng.random_range(1..100i64) * 100_000));
        o.set("TOTALDUE", money(rng.random_range(0..5_000_000i64)));
        o.set("TERMNAME", pick(rng, TERMS).to_string());
    }

    pub(super) fn employee_row(
        &self,
        o: &mut RowOut<'_>,
        rng: &mut SmallRng,
        idx: u64,
        created: NaiveDateTime,
        active: bool,
    ) {
        let nloc = self.count(Kind::Location).max(1);
        let (f, l) = self.person(Kind::Employee, idx);
        o.set("EMPLOYEEID", format!("E{:04}", idx + 1));
        o.set("PERSONALINFO.CONTACTNAME", format!("{l}, {f}"));
        o.set(
            "TITLE",
            pick(
                rng,
                &[
                    "Analyst",
                    "Manager",
                    "Engineer",
                    "Director",
                    "Accountant",
                    "Consultant",
                ],
            )
            .to_string(),
        );
        o.set(
            "DEPARTMENTID",
            self.department(rng.random_range(0..self.count(Kind::Department).max(1)))
                .0,
        );
        o.set("LOCATIONID", self.location(rng.random_range(0..nloc)).0);
        o.set("STARTDATE", fmt_date(created.date()));
        if !active {
            o.set(
                "ENDDATE",
                fmt_date(created.date() + Duration::days(rng.random_range(60..700))),
            );
        }
    }

    pub(super) fn item_row(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
        o.set("ITEMID", format!("I{:04}", idx + 1));
        o.set(
            "NAME",
            format!(
                "{} {}",
                pick(rng, ADJ),
                pick(
                    rng,
                    &[
                        "Widget",
                        "License",
                        "Support Plan",
                        "Kit",
                        "Cable",
                        "Subscription"
                    ]
                )
            ),
        );
        o.set(
            "ITEMTYPE",
            pick(
                rng,
                &[
                    "Inventory",
                    "Non-Inventory",
                    "Non-Inventory (Purchase only)",
                    "Non-Inventory (Sales only)",
                    "Kit",
                ],
            )
            .to_string(),
        );
        o.set(
            "PRODUCTLINEID",
            pick(rng, &["PL-HW", "PL-SW", "PL-SVC"]).to_string(),
        );
        o.set(
            "GLGROUP",
            pick(rng, &["Hardware", "Software", "Services"]).to_string(),
        );
        o.set("STANDARD_COST", money(rng.random_range(100..500_000i64)));
    }

    pub(super) fn user_row(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
        if idx == 0 {
            o.set("LOGINID", self.user_id.clone());
            o.set("DESCRIPTION", "Power BI web services user");
            o.set("ADMIN", "off");
            o.set("STATUS", "active");
        } else {
            let (f, l) = self.person(Kind::UserInfo, idx);
            o.set(
                "LOGINID",
                format!(
                    "{}{}",
                    f.to_lowercase().chars().next().unwrap_or('u'),
                    l.to_lowercase()
                ),
            );
            o.set("DESCRIPTION", format!("{f} {l}"));
            o.set("ADMIN", pick(rng, &["off", "limited", "full"]).to_string());
        }
        o.set("USERTYPE", "business user");
        o.set(
            "CONTACTINFO.EMAIL1",
            format!("user{}@mldemo.example.com", idx + 1),
        );
    }
}
