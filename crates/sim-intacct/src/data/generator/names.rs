//! The word lists the company is written from, and the seeded names built from them. Data tables:
//! most of this file's length is the lists themselves.

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::{Generator, Kind, mix, pick};

pub(super) const ADJ: &[&str] = &[
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
pub(super) const NOUN: &[&str] = &[
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
pub(super) const SUFFIX: &[&str] = &[
    "LLC", "Inc.", "Co.", "Ltd.", "Group", "Partners", "& Sons", "Corp.",
];
pub(super) const FIRST: &[&str] = &[
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mateo", "Sofia", "Ethan", "Mia", "Lucas", "Amara",
    "Chen", "Priya", "Jonas", "Fatima", "Diego", "Hana", "Omar", "Grace", "Isaac",
];
pub(super) const LAST: &[&str] = &[
    "Johnson", "Garcia", "Nguyen", "Smith", "Patel", "Kowalski", "Okafor", "Larsen", "Rossi",
    "Tanaka", "Martin", "Silva", "Cohen", "Murphy", "Schmidt", "Ali", "Brown", "Dubois", "Novak",
    "Reyes",
];
pub(super) const LOCATIONS: &[(&str, &str)] = &[
    ("100", "Chicago HQ"),
    ("200", "Denver Office"),
    ("300", "Boston Office"),
    ("400", "Austin Office"),
    ("500", "Seattle Office"),
];
pub(super) const DEPARTMENTS: &[(&str, &str)] = &[
    ("ADM", "Administration"),
    ("FIN", "Finance"),
    ("SAL", "Sales"),
    ("MKT", "Marketing"),
    ("ENG", "Engineering"),
    ("OPS", "Operations"),
    ("HR", "Human Resources"),
    ("SUP", "Customer Support"),
];
pub(super) const CLASSES: &[&str] = &["Services", "Software", "Hardware", "Training", "Support"];
pub(super) const TERMS: &[&str] = &["Net 30", "Net 15", "Net 45", "Due on receipt", "Net 60"];

impl Generator {
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

    pub(super) fn person(&self, kind: Kind, i: u64) -> (String, String) {
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, kind, i, 4));
        (
            pick(&mut rng, FIRST).to_string(),
            pick(&mut rng, LAST).to_string(),
        )
    }
}
