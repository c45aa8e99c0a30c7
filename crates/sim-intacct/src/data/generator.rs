//! The seeded synthetic company. Every row is a pure function of (seed, object, index), so the same
//! seed always yields the same company and a million-row table costs no memory until a row is read.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use super::defs::{Kind, ObjectDef};
use crate::clock::{fmt_date, fmt_ts};
use crate::config::CompanySize;

const ADJ: &[&str] = &[
    "Summit",
    "Harbor",
    "Prairie",
    "Granite",
    "Cedar",
    "Northwind",
    "Bluewater",
    "Lakeside",
    "Ironwood",
    "Silverline",
    "Redstone",
    "Evergreen",
    "Pioneer",
    "Keystone",
    "Riverbend",
    "Oakridge",
    "Sterling",
    "Beacon",
    "Frontier",
    "Maple",
];
const NOUN: &[&str] = &[
    "Office Supply",
    "Logistics",
    "Consulting",
    "Software",
    "Print Works",
    "Facilities",
    "Catering",
    "Staffing",
    "Freight",
    "Analytics",
    "Legal Services",
    "Insurance",
    "Telecom",
    "Cleaning",
    "Hardware",
    "Media",
    "Travel",
    "Energy",
    "Security",
    "Design",
];
const SUFFIX: &[&str] = &[
    "LLC", "Inc.", "Co.", "Ltd.", "Group", "Partners", "& Sons", "Corp.",
];
const FIRST: &[&str] = &[
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mateo", "Sofia", "Ethan", "Mia", "Lucas", "Amara",
    "Chen", "Priya", "Jonas", "Fatima", "Diego", "Hana", "Omar", "Grace", "Isaac",
];
const LAST: &[&str] = &[
    "Johnson", "Garcia", "Nguyen", "Smith", "Patel", "Kowalski", "Okafor", "Larsen", "Rossi",
    "Tanaka", "Martin", "Silva", "Cohen", "Murphy", "Schmidt", "Ali", "Brown", "Dubois", "Novak",
    "Reyes",
];
const LOCATIONS: &[(&str, &str)] = &[
    ("100", "Chicago HQ"),
    ("200", "Denver Office"),
    ("300", "Boston Office"),
    ("400", "Austin Office"),
    ("500", "Seattle Office"),
];
const DEPARTMENTS: &[(&str, &str)] = &[
    ("ADM", "Administration"),
    ("FIN", "Finance"),
    ("SAL", "Sales"),
    ("MKT", "Marketing"),
    ("ENG", "Engineering"),
    ("OPS", "Operations"),
    ("HR", "Human Resources"),
    ("SUP", "Customer Support"),
];
const CLASSES: &[&str] = &["Services", "Software", "Hardware", "Training", "Support"];
const TERMS: &[&str] = &["Net 30", "Net 15", "Net 45", "Due on receipt", "Net 60"];
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

/// Builds rows for every object of one company.
#[derive(Debug, Clone)]
pub struct Generator {
    pub seed: u64,
    pub size: CompanySize,
    pub start: NaiveDateTime,
    pub user_id: String,
}

fn mix(seed: u64, kind: Kind, idx: u64, salt: u64) -> u64 {
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

fn money(cents: i64) -> String {
    Decimal::new(cents, 2).to_string()
}

fn pick<'a, T>(rng: &mut SmallRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

fn bool_s(b: bool) -> String {
    if b { "true".into() } else { "false".into() }
}

struct RowOut<'d> {
    def: &'d ObjectDef,
    vals: Vec<String>,
}

impl<'d> RowOut<'d> {
    fn new(def: &'d ObjectDef) -> Self {
        RowOut {
            def,
            vals: vec![String::new(); def.fields.len()],
        }
    }
    fn set(&mut self, field: &str, v: impl Into<String>) {
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

    fn rng(&self, kind: Kind, idx: u64) -> SmallRng {
        SmallRng::seed_from_u64(mix(self.seed, kind, idx, 1))
    }

    /// Seeded bulk-change instants: many records share these seconds, as after an import or a mass update.
    fn bulk_instant(&self, k: u64) -> NaiveDateTime {
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

    fn balance_stamp(&self, idx: u64) -> NaiveDateTime {
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

    pub fn location(&self, i: u64) -> (&'static str, &'static str) {
        LOCATIONS[(i as usize) % LOCATIONS.len()]
    }

    pub fn department(&self, i: u64) -> (String, String) {
        let (id, name) = DEPARTMENTS[(i as usize) % DEPARTMENTS.len()];
        let round = i as usize / DEPARTMENTS.len();
        if round == 0 {
            (id.to_string(), name.to_string())
        } else {
            (format!("{id}{round}"), format!("{name} {}", round + 1))
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

    pub fn vendor_id(&self, i: u64) -> String {
        format!("V{:05}", i + 1)
    }

    pub fn vendor_name(&self, i: u64) -> String {
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, Kind::Vendor, i, 3));
        let name = format!(
            "{} {} {}",
            pick(&mut rng, ADJ),
            pick(&mut rng, NOUN),
            pick(&mut rng, SUFFIX)
        );
        if i >= (ADJ.len() * NOUN.len()) as u64 {
            format!("{name} #{}", i + 1)
        } else {
            name
        }
    }

    fn person(&self, kind: Kind, i: u64) -> (String, String) {
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, kind, i, 4));
        (
            pick(&mut rng, FIRST).to_string(),
            pick(&mut rng, LAST).to_string(),
        )
    }

    /// Index of period `p` (0 = oldest) → (year, month) of the month it ends.
    fn period_month(&self, p: u64) -> (i32, u32) {
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

    fn period_end(&self, p: u64) -> NaiveDateTime {
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

    fn balance_opening(&self, a: u64, d: u64, l: u64) -> i64 {
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

    /// The complete row `idx` of an object, every field rendered as Intacct does.
    pub fn row(&self, def: &ObjectDef, idx: u64) -> Vec<String> {
        let mut o = RowOut::new(def);
        let mut rng = self.rng(def.kind, idx);
        let recno = def.recno_base + idx;
        o.set(def.key_field, recno.to_string());
        let (created, modified) = self.audit_times(def.kind, idx);
        o.set("WHENCREATED", fmt_ts(created));
        o.set("WHENMODIFIED", modified.map(fmt_ts).unwrap_or_default());
        o.set("CREATEDBY", "1");
        o.set("MODIFIEDBY", if modified.is_some() { "1" } else { "" });
        let nloc = self.count(Kind::Location).max(1);
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
            Kind::Vendor => {
                o.set("VENDORID", self.vendor_id(idx));
                o.set("NAME", self.vendor_name(idx));
                if idx > 10 && rng.random::<f64>() < 0.05 {
                    let parent = rng.random_range(0..10);
                    o.set("PARENTKEY", (def.recno_base + parent).to_string());
                    o.set("PARENTID", self.vendor_id(parent));
                }
                o.set(
                    "VENDTYPE",
                    pick(
                        &mut rng,
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
                o.set("TERMNAME", pick(&mut rng, TERMS).to_string());
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
            Kind::GlAccount => {
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
            Kind::Department => {
                let (id, name) = self.department(idx);
                o.set("DEPARTMENTID", id);
                o.set("TITLE", name);
                o.set("SUPERVISORID", format!("E{:04}", idx + 1));
                o.set("STATUS", "active");
            }
            Kind::Location => {
                let (id, name) = self.location(idx);
                o.set("LOCATIONID", id);
                o.set("NAME", name);
                o.set("CURRENCY", "USD");
                o.set("STARTDATE", fmt_date(created.date()));
                o.set("STATUS", "active");
            }
            Kind::Class => {
                let name = CLASSES
                    .get(idx as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| format!("Class {}", idx + 1));
                o.set("CLASSID", format!("C{:03}", idx + 1));
                o.set("DESCRIPTION", format!("{name} revenue and cost"));
                o.set("NAME", name);
            }
            Kind::Project => {
                o.set("PROJECTID", format!("P-{:04}", idx + 1001));
                o.set(
                    "NAME",
                    format!(
                        "{} {}",
                        pick(&mut rng, ADJ),
                        pick(
                            &mut rng,
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
                        &mut rng,
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
            Kind::Customer => {
                o.set("CUSTOMERID", format!("C{:05}", idx + 1));
                let (_, l) = self.person(Kind::Customer, idx);
                o.set(
                    "NAME",
                    format!("{l} {} {}", pick(&mut rng, NOUN), pick(&mut rng, SUFFIX)),
                );
                o.set("ONHOLD", bool_s(rng.random::<f64>() < 0.05));
                o.set("ONETIME", bool_s(rng.random::<f64>() < 0.02));
                o.set(
                    "CUSTTYPE",
                    pick(&mut rng, &["Enterprise", "Mid-Market", "Small Business"]).to_string(),
                );
                o.set("CREDITLIMIT", money(rng.random_range(1..100i64) * 100_000));
                o.set("TOTALDUE", money(rng.random_range(0..5_000_000i64)));
                o.set("TERMNAME", pick(&mut rng, TERMS).to_string());
            }
            Kind::Employee => {
                let (f, l) = self.person(Kind::Employee, idx);
                o.set("EMPLOYEEID", format!("E{:04}", idx + 1));
                o.set("PERSONALINFO.CONTACTNAME", format!("{l}, {f}"));
                o.set(
                    "TITLE",
                    pick(
                        &mut rng,
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
            Kind::Item => {
                o.set("ITEMID", format!("I{:04}", idx + 1));
                o.set(
                    "NAME",
                    format!(
                        "{} {}",
                        pick(&mut rng, ADJ),
                        pick(
                            &mut rng,
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
                        &mut rng,
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
                    pick(&mut rng, &["PL-HW", "PL-SW", "PL-SVC"]).to_string(),
                );
                o.set(
                    "GLGROUP",
                    pick(&mut rng, &["Hardware", "Software", "Services"]).to_string(),
                );
                o.set("STANDARD_COST", money(rng.random_range(100..500_000i64)));
            }
            Kind::ApBill => self.ap_bill(&mut o, &mut rng, idx),
            Kind::ApPymt => self.ap_payment(&mut o, &mut rng, idx),
            Kind::GlEntry => {
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
            Kind::GlAccountBalance => {
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
            Kind::AuditHistory => {
                // Seeded deletions of records whose RECORDNOs lie past the generated range (so they are gone).
                let (obj, base, n) = match idx % 3 {
                    0 => ("vendor", 1, self.count(Kind::Vendor)),
                    1 => ("apbill", 1001, self.count(Kind::ApBill)),
                    _ => ("customer", 1, self.count(Kind::Customer)),
                };
                let key = base + n + idx / 3;
                o.set("OBJECTTYPE", obj);
                o.set("OBJECTKEY", format!("{key}--REC"));
                o.set("OBJECTDESC", format!("{} {key}", obj));
                o.set("USERID", self.user_id.clone());
                o.set("ACCESSMODE", "D");
                let t = self.start - Duration::seconds(rng.random_range(3600..30 * 86_400));
                o.set("ACCESSTIME", fmt_ts(t));
                o.set("SOURCE", pick(&mut rng, &["api", "ui"]).to_string());
            }
            Kind::UserInfo => {
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
                    o.set(
                        "ADMIN",
                        pick(&mut rng, &["off", "limited", "full"]).to_string(),
                    );
                }
                o.set("USERTYPE", "business user");
                o.set(
                    "CONTACTINFO.EMAIL1",
                    format!("user{}@mldemo.example.com", idx + 1),
                );
            }
        }
        o.vals
    }

    fn ap_bill(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
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

    fn ap_payment(&self, o: &mut RowOut<'_>, rng: &mut SmallRng, idx: u64) {
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
}

fn hex_token(x: u64) -> String {
    format!("{x:016x}")
}
