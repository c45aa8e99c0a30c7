//! The simulated company's records: object definitions, the seeded generator, and the store.
//!
//! Generated rows are never stored: a row is rebuilt from (seed, object, index) when read, so a
//! million-vendor company costs no memory. Writes (insert/update/delete) live in a small overlay.

pub mod defs;
pub mod gen_index;
pub mod generator;

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;

pub use defs::{FieldDef, FieldType, Kind, OBJECTS, ObjectDef, object_def};
pub use gen_index::GenIndex;
pub use generator::Generator;

use crate::clock::{fmt_date, fmt_ts, parse_date, parse_ts};

/// A typed value for comparisons and ordering (filters compare timestamps as date-times, not strings).
#[derive(Clone, Debug, PartialEq)]
pub enum Val<'a> {
    Null,
    Int(i64),
    Dec(Decimal),
    Date(NaiveDate),
    Ts(NaiveDateTime),
    Bool(bool),
    Str(std::borrow::Cow<'a, str>),
}

impl<'a> Val<'a> {
    /// Interprets text as a value of `ty`; text that does not parse stays a string (compared as text).
    pub fn parse(ty: FieldType, s: &'a str) -> Val<'a> {
        if s.is_empty() {
            return Val::Null;
        }
        match ty {
            FieldType::Integer => s
                .trim()
                .parse::<i64>()
                .map(Val::Int)
                .or_else(|_| s.trim().parse::<Decimal>().map(Val::Dec))
                .unwrap_or(Val::Str(s.into())),
            FieldType::Decimal | FieldType::Currency => s
                .trim()
                .parse::<Decimal>()
                .map(Val::Dec)
                .unwrap_or(Val::Str(s.into())),
            FieldType::Date => parse_date(s).map(Val::Date).unwrap_or(Val::Str(s.into())),
            FieldType::Timestamp => parse_ts(s).map(Val::Ts).unwrap_or(Val::Str(s.into())),
            FieldType::Boolean => match s.trim() {
                "true" | "T" | "1" => Val::Bool(true),
                "false" | "F" | "0" => Val::Bool(false),
                _ => Val::Str(s.into()),
            },
            FieldType::Text | FieldType::Enum => Val::Str(s.into()),
        }
    }
}

/// A stored row: values in the object's field order.
pub type Row = Arc<Vec<String>>;

/// One object's records: `base` generated rows plus the write overlay.
#[derive(Debug)]
pub struct Table {
    pub def: &'static ObjectDef,
    pub base: u64,
    /// Generated rows that were updated (Some) or deleted (None), by key.
    overlay: HashMap<u64, Option<Row>>,
    /// Rows inserted after start, by key (always past the generated range).
    inserted: BTreeMap<u64, Row>,
    next_key: u64,
}

/// A read view of one row; a generated row is materialised on first access to a non-hot field.
pub struct RowRef<'a> {
    pub def: &'static ObjectDef,
    pub key: u64,
    generator: &'a Generator,
    /// WHENMODIFIED of every generated row of the table (seconds since the epoch, i64::MIN = NULL).
    wm: Option<&'a [i64]>,
    src: Src<'a>,
    cache: OnceCell<Vec<String>>,
}

enum Src<'a> {
    Gen(u64),
    Stored(&'a Row),
}

impl<'a> RowRef<'a> {
    fn values(&self) -> &[String] {
        match &self.src {
            Src::Stored(r) => r.as_slice(),
            Src::Gen(idx) => self
                .cache
                .get_or_init(|| self.generator.row(self.def, *idx)),
        }
    }

    /// The value as Intacct renders it ("" = NULL).
    pub fn text(&self, fi: usize) -> &str {
        self.values().get(fi).map(String::as_str).unwrap_or("")
    }

    /// The typed value. The key and WHENMODIFIED of generated rows come without building the row,
    /// which keeps keyset paging over a million rows cheap.
    pub fn val(&self, fi: usize) -> Val<'_> {
        let field = &self.def.fields[fi];
        if let Src::Gen(idx) = self.src
            && self.cache.get().is_none()
        {
            if field.id == self.def.key_field {
                return Val::Int(self.key as i64);
            }
            if field.id == "MEGAENTITYID" {
                return match self.generator.owner(self.def.kind, idx) {
                    Some(li) => Val::Str(self.generator.location(li).0.into()),
                    None => Val::Null,
                };
            }
            // Balances are filtered by period, a function of the index: without this every
            // balance of every period was built to test its PERIOD (12 functions x 43,200 rows
            // per request in the demo company: seconds of CPU per request, a minute in debug).
            if field.id == "PERIOD" && self.def.kind == Kind::GlAccountBalance {
                let (p, ..) = self.generator.balance_coords(idx);
                return Val::Str(self.generator.period_name(p).into());
            }
            if field.id == "WHENMODIFIED" {
                if let Some(&secs) = self.wm.and_then(|w| w.get(idx as usize)) {
                    return wm_of(secs).map_or(Val::Null, Val::Ts);
                }
                return match self.generator.when_modified(self.def.kind, idx) {
                    Some(t) => Val::Ts(t),
                    None => Val::Null,
                };
            }
        }
        Val::parse(field.ty, self.text(fi))
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.def
            .fields
            .iter()
            .zip(self.values())
            .map(|(f, v)| (f.id.to_string(), v.clone()))
            .collect()
    }
}

/// WHENMODIFIED of a generated row from its cached column entry (seconds since the epoch, i64::MIN =
/// NULL). The one definition [`RowRef::val`] and the ordered index share, so both agree on every row.
pub fn wm_of(secs: i64) -> Option<NaiveDateTime> {
    if secs == i64::MIN {
        return None;
    }
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc())
}

impl Table {
    fn new(def: &'static ObjectDef, base: u64) -> Self {
        Table {
            def,
            base,
            overlay: HashMap::new(),
            inserted: BTreeMap::new(),
            // Leave room past the generated range for the keys of seeded deletions.
            next_key: def.recno_base + base + 1000,
        }
    }

    fn gen_index(&self, key: u64) -> Option<u64> {
        let idx = key.checked_sub(self.def.recno_base)?;
        (idx < self.base).then_some(idx)
    }

    pub fn len(&self) -> u64 {
        let deleted = self.overlay.values().filter(|v| v.is_none()).count() as u64;
        self.base - deleted + self.inserted.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every table of the company.
#[derive(Debug)]
pub struct Store {
    pub generator: Generator,
    tables: BTreeMap<Kind, Table>,
    /// Lazily built WHENMODIFIED columns of generated rows: keyset paging filters and sorts on it, and
    /// recomputing it per row per page would dominate large benchmarks. Writes go to the overlay, which
    /// takes precedence, so the column never goes stale.
    wm_cache: BTreeMap<Kind, std::sync::OnceLock<Vec<i64>>>,
    /// Lazily built ordered indexes of generated rows (see [`gen_index`]); like the column above they
    /// cover generated rows only, which never change, so writes never have to maintain them.
    gen_indexes: BTreeMap<Kind, std::sync::OnceLock<Option<GenIndex>>>,
}

impl Store {
    pub fn new(generator: Generator) -> Self {
        let tables = OBJECTS
            .iter()
            .map(|def| (def.kind, Table::new(def, generator.count(def.kind))))
            .collect();
        let wm_cache = OBJECTS
            .iter()
            .map(|d| (d.kind, std::sync::OnceLock::new()))
            .collect();
        let gen_indexes = OBJECTS
            .iter()
            .map(|d| (d.kind, std::sync::OnceLock::new()))
            .collect();
        Store {
            generator,
            tables,
            wm_cache,
            gen_indexes,
        }
    }

    pub fn table(&self, def: &ObjectDef) -> &Table {
        self.tables
            .get(&def.kind)
            .expect("every object has a table")
    }

    fn table_mut(&mut self, def: &ObjectDef) -> &mut Table {
        self.tables
            .get_mut(&def.kind)
            .expect("every object has a table")
    }

    /// The WHENMODIFIED column of the generated rows (see [`wm_of`]); None if the object has no such
    /// field.
    pub fn wm_column(&self, def: &'static ObjectDef) -> Option<&[i64]> {
        let t = self.table(def);
        def.field_index("WHENMODIFIED").map(|_| {
            self.wm_cache[&def.kind]
                .get_or_init(|| {
                    (0..t.base)
                        .map(|i| match self.generator.when_modified(def.kind, i) {
                            Some(x) => x.and_utc().timestamp(),
                            None => i64::MIN,
                        })
                        .collect()
                })
                .as_slice()
        })
    }

    /// The ordered index of the generated rows, built on first use; None if the object has no
    /// WHENMODIFIED or too many rows for the index's 32-bit positions.
    pub fn gen_index(&self, def: &'static ObjectDef) -> Option<&GenIndex> {
        let wm = self.wm_column(def)?;
        self.gen_indexes[&def.kind]
            .get_or_init(|| GenIndex::build(wm))
            .as_ref()
    }

    /// The generated row `idx` as the generator made it, whether or not a write has replaced it since
    /// (callers check [`Store::is_overlaid`]).
    pub fn generated(&self, def: &'static ObjectDef, idx: u64) -> RowRef<'_> {
        self.generated_with(def, idx, self.wm_column(def))
    }

    /// [`Store::generated`] with the WHENMODIFIED column already in hand (for loops over many rows).
    pub fn generated_with<'s>(
        &'s self,
        def: &'static ObjectDef,
        idx: u64,
        wm: Option<&'s [i64]>,
    ) -> RowRef<'s> {
        let mut r = self.row_ref(def, def.recno_base + idx, Src::Gen(idx));
        r.wm = wm;
        r
    }

    /// Whether a write replaced or deleted the generated row with this key.
    pub fn is_overlaid(&self, def: &'static ObjectDef, key: u64) -> bool {
        self.table(def).overlay.contains_key(&key)
    }

    /// Keys of generated rows replaced or deleted by writes.
    pub fn overlaid_keys(&self, def: &'static ObjectDef) -> impl Iterator<Item = u64> + '_ {
        self.table(def).overlay.keys().copied()
    }

    /// Every row that lives in the write overlay (updated generated rows and inserted rows), in no
    /// particular order.
    pub fn stored_rows(&self, def: &'static ObjectDef) -> impl Iterator<Item = RowRef<'_>> + '_ {
        let t = self.table(def);
        let updated = t
            .overlay
            .iter()
            .filter_map(|(k, r)| r.as_ref().map(|r| (*k, r)));
        updated
            .chain(t.inserted.iter().map(|(k, r)| (*k, r)))
            .map(move |(k, r)| self.row_ref(def, k, Src::Stored(r)))
    }

    /// Visits every current row in key order.
    pub fn scan<'s>(&'s self, def: &'static ObjectDef, mut f: impl FnMut(RowRef<'s>)) {
        let t = self.table(def);
        let wm = self.wm_column(def);
        for idx in 0..t.base {
            let key = def.recno_base + idx;
            let src = match t.overlay.get(&key) {
                Some(None) => continue,
                Some(Some(r)) => Src::Stored(r),
                None => Src::Gen(idx),
            };
            let mut r = self.row_ref(def, key, src);
            r.wm = wm;
            f(r);
        }
        for (key, r) in &t.inserted {
            f(self.row_ref(def, *key, Src::Stored(r)));
        }
    }

    fn row_ref<'s>(&'s self, def: &'static ObjectDef, key: u64, src: Src<'s>) -> RowRef<'s> {
        RowRef {
            def,
            key,
            generator: &self.generator,
            wm: None,
            src,
            cache: OnceCell::new(),
        }
    }

    pub fn get(&self, def: &'static ObjectDef, key: u64) -> Option<RowRef<'_>> {
        let t = self.table(def);
        if let Some(idx) = t.gen_index(key) {
            return match t.overlay.get(&key) {
                Some(None) => None,
                Some(Some(r)) => Some(self.row_ref(def, key, Src::Stored(r))),
                None => Some(self.row_ref(def, key, Src::Gen(idx))),
            };
        }
        t.inserted
            .get(&key)
            .map(|r| self.row_ref(def, key, Src::Stored(r)))
    }

    /// Inserts a row; unknown field names are ignored. Returns the assigned key. `never_modified`:
    /// WHENMODIFIED stays empty, as Intacct leaves it on records not modified since creation.
    pub fn insert(
        &mut self,
        def: &'static ObjectDef,
        fields: &BTreeMap<String, String>,
        now: NaiveDateTime,
        never_modified: bool,
    ) -> u64 {
        let t = self.table_mut(def);
        let key = t.next_key;
        t.next_key += 1;
        let mut vals = vec![String::new(); def.fields.len()];
        for (k, v) in fields {
            if let Some(i) = def.field_index(k) {
                vals[i] = v.clone();
            }
        }
        vals[def.key_index()] = key.to_string();
        if let Some(i) = def.field_index("WHENCREATED")
            && vals[i].is_empty()
        {
            vals[i] = match def.fields[i].ty {
                FieldType::Date => fmt_date(now.date()),
                _ => fmt_ts(now),
            };
        }
        if let Some(i) = def.field_index("AUDITWHENCREATED") {
            vals[i] = fmt_ts(now);
        }
        if let Some(i) = def.field_index("WHENMODIFIED") {
            vals[i] = if never_modified {
                String::new()
            } else {
                fmt_ts(now)
            };
        }
        if let Some(i) = def.field_index("STATUS")
            && vals[i].is_empty()
        {
            vals[i] = "active".into();
        }
        t.inserted.insert(key, Arc::new(vals));
        key
    }

    /// Merges `fields` into a row and moves WHENMODIFIED to `now` (never backwards). False if absent.
    pub fn update(
        &mut self,
        def: &'static ObjectDef,
        key: u64,
        fields: &BTreeMap<String, String>,
        now: NaiveDateTime,
    ) -> bool {
        let Some(current) = self.get(def, key).map(|r| r.values().to_vec()) else {
            return false;
        };
        let mut vals = current;
        for (k, v) in fields {
            if let Some(i) = def.field_index(k)
                && i != def.key_index()
            {
                vals[i] = v.clone();
            }
        }
        if let Some(i) = def.field_index("WHENMODIFIED") {
            let prev = parse_ts(&vals[i]);
            let t = match prev {
                Some(p) if p > now => p,
                _ => now,
            };
            vals[i] = fmt_ts(t);
        }
        let t = self.table_mut(def);
        let row = Arc::new(vals);
        if t.gen_index(key).is_some() {
            t.overlay.insert(key, Some(row));
        } else {
            t.inserted.insert(key, row);
        }
        true
    }

    /// Removes a row; returns its name field value (for the audit event) if it existed.
    pub fn delete(&mut self, def: &'static ObjectDef, key: u64) -> Option<String> {
        let name = {
            let r = self.get(def, key)?;
            let ni = def.field_index(def.name_field).unwrap_or(0);
            r.text(ni).to_string()
        };
        let t = self.table_mut(def);
        if t.gen_index(key).is_some() {
            t.overlay.insert(key, None);
        } else {
            t.inserted.remove(&key);
        }
        Some(name)
    }
}

impl Store {
    pub fn gen_ref(&self) -> &Generator {
        &self.generator
    }
}
