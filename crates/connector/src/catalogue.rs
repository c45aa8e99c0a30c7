//! The catalogue of Intacct objects the connector knows: their default Power BI table, their key, and the
//! fields a finance dashboard usually needs.
//!
//! The catalogue proposes; `lookup` decides. Field lists are intersected with what the company's object
//! definition really has (a field the company lacks would fail the whole query with "Invalid fields list"),
//! and column types come from the definition's DATATYPE when it is known.

use ml_powerbi::schema::DataType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Master data keyed by RECORDNO, incremental on WHENMODIFIED.
    Dimension,
    /// Documents (bills, payments) keyed by RECORDNO, incremental on WHENMODIFIED.
    Transaction,
    /// GL balances: a snapshot per account × period × book (× department × location).
    Balances,
}

#[derive(Debug)]
pub struct Entry {
    pub object: &'static str,
    pub table: &'static str,
    pub kind: StreamKind,
    /// The business identifier shown to people (VENDORID, ACCOUNTNO, ...).
    pub business_id: &'static str,
    pub fields: &'static [(&'static str, DataType)],
}

impl Entry {
    /// The field whose value AUDITHISTORY gives as a deleted record's `OBJECTKEY`, or `None` where
    /// it gives `RECORDNO--REC`. Sage defines `OBJECTKEY` as the object's unique name field, which
    /// differs by object (developer.intacct.com, "Audit trails"); Estuary's connector found on real
    /// tenants that it is VENDORID for a vendor and CUSTOMERID for a customer, `123--REC` only for
    /// objects keyed by RECORDNO (estuary/connectors issue 5207, pull request 5217). Master data is
    /// named by its business ID; documents and balances by their RECORDNO.
    pub fn audit_key_field(&self) -> Option<&'static str> {
        match self.kind {
            StreamKind::Dimension => Some(self.business_id),
            StreamKind::Transaction | StreamKind::Balances => None,
        }
    }

    /// The field that says when a record was created, as a system-set audit time: records never
    /// modified since (empty WHENMODIFIED) are found by it since the cursor, instead of all of them
    /// being read again each run. Sources, per object (docs/never-modified-records.md):
    ///
    /// - Master data (VENDOR, GLACCOUNT, DEPARTMENT, LOCATION, CLASS, PROJECT, CUSTOMER, EMPLOYEE,
    ///   ITEM): WHENCREATED, a TIMESTAMP set by the system (reference §6.1: the common audit fields
    ///   WHENCREATED/WHENMODIFIED/CREATEDBY/MODIFIEDBY; Estuary's source-sage-intacct reads the
    ///   never-modified records of every object with `WHENMODIFIED IS NULL AND WHENCREATED > cursor`).
    /// - AP bills and payments (APBILL, APPYMT): AUDITWHENCREATED. Their WHENCREATED is the document
    ///   date (reference §6.1 and §6.3: "WHENCREATED (bill date)", a DATE the user enters and may
    ///   back-date), so a bill entered today with last month's date would be missed by it; Sage's
    ///   object definitions of these documents carry the entry time separately as AUDITWHENCREATED
    ///   ("Audit when created", TIMESTAMP; the REST API's `audit.createdDateTime` beside the bill's
    ///   `createdDate`). Estuary's WHENCREATED filter has this gap on documents.
    /// - GL balances: `None`, they are a snapshot read by period.
    ///
    /// An object outside the catalogue has no such field here: its never-modified records are read
    /// in full every run, as before.
    pub fn created_field(&self) -> Option<&'static str> {
        match self.kind {
            StreamKind::Dimension => Some("WHENCREATED"),
            StreamKind::Transaction => Some("AUDITWHENCREATED"),
            StreamKind::Balances => None,
        }
    }
}

use DataType::{Boolean as B, DateTime as T, Decimal as D, Int64 as I, String as S};

const ENTRIES: &[Entry] = &[
    Entry {
        object: "VENDOR",
        table: "Vendors",
        kind: StreamKind::Dimension,
        business_id: "VENDORID",
        fields: &[
            ("RECORDNO", I),
            ("VENDORID", S),
            ("NAME", S),
            ("PARENTID", S),
            ("VENDTYPE", S),
            ("STATUS", S),
            ("ONETIME", B),
            ("ONHOLD", B),
            ("APACCOUNT", S),
            ("CURRENCY", S),
            ("PAYMENTPRIORITY", S),
            ("TERMNAME", S),
            ("CREDITLIMIT", D),
            ("TOTALDUE", D),
            ("MEGAENTITYID", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "GLACCOUNT",
        table: "GLAccounts",
        kind: StreamKind::Dimension,
        business_id: "ACCOUNTNO",
        fields: &[
            ("RECORDNO", I),
            ("ACCOUNTNO", S),
            ("TITLE", S),
            ("ACCOUNTTYPE", S),
            ("NORMALBALANCE", S),
            ("CLOSINGTYPE", S),
            ("CATEGORY", S),
            ("STATUS", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "GLACCOUNTBALANCE",
        table: "GLBalances",
        kind: StreamKind::Balances,
        business_id: "ACCOUNTNO",
        fields: &[
            ("ACCOUNTNO", S),
            ("ACCOUNTTITLE", S),
            ("PERIOD", S),
            ("BOOKID", S),
            ("CURRENCY", S),
            ("DEPARTMENTID", S),
            ("LOCATIONID", S),
            ("OPENBAL", D),
            ("TOTDEBIT", D),
            ("TOTCREDIT", D),
            ("TOTADJDEBIT", D),
            ("TOTADJCREDIT", D),
            ("FORBAL", D),
            ("ENDBAL", D),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "DEPARTMENT",
        table: "Departments",
        kind: StreamKind::Dimension,
        business_id: "DEPARTMENTID",
        fields: &[
            ("RECORDNO", I),
            ("DEPARTMENTID", S),
            ("TITLE", S),
            ("PARENTID", S),
            ("SUPERVISORNAME", S),
            ("STATUS", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "LOCATION",
        table: "Locations",
        kind: StreamKind::Dimension,
        business_id: "LOCATIONID",
        fields: &[
            ("RECORDNO", I),
            ("LOCATIONID", S),
            ("NAME", S),
            ("PARENTID", S),
            ("CURRENCY", S),
            ("STATUS", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "CLASS",
        table: "Classes",
        kind: StreamKind::Dimension,
        business_id: "CLASSID",
        fields: &[
            ("RECORDNO", I),
            ("CLASSID", S),
            ("NAME", S),
            ("DESCRIPTION", S),
            ("PARENTID", S),
            ("STATUS", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "PROJECT",
        table: "Projects",
        kind: StreamKind::Dimension,
        business_id: "PROJECTID",
        fields: &[
            ("RECORDNO", I),
            ("PROJECTID", S),
            ("NAME", S),
            ("PROJECTSTATUS", S),
            ("PARENTID", S),
            ("CUSTOMERID", S),
            ("LOCATIONID", S),
            ("DEPARTMENTID", S),
            ("BUDGETAMOUNT", D),
            ("STATUS", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "CUSTOMER",
        table: "Customers",
        kind: StreamKind::Dimension,
        business_id: "CUSTOMERID",
        fields: &[
            ("RECORDNO", I),
            ("CUSTOMERID", S),
            ("NAME", S),
            ("PARENTID", S),
            ("STATUS", S),
            ("ONHOLD", B),
            ("ONETIME", B),
            ("TOTALDUE", D),
            ("CREDITLIMIT", D),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "EMPLOYEE",
        table: "Employees",
        kind: StreamKind::Dimension,
        business_id: "EMPLOYEEID",
        fields: &[
            ("RECORDNO", I),
            ("EMPLOYEEID", S),
            ("PERSONALINFO.CONTACTNAME", S),
            ("LOCATIONID", S),
            ("DEPARTMENTID", S),
            ("STARTDATE", T),
            ("ENDDATE", T),
            ("STATUS", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "ITEM",
        table: "Items",
        kind: StreamKind::Dimension,
        business_id: "ITEMID",
        fields: &[
            ("RECORDNO", I),
            ("ITEMID", S),
            ("NAME", S),
            ("ITEMTYPE", S),
            ("PRODUCTLINEID", S),
            ("GLGROUP", S),
            ("STATUS", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "APBILL",
        table: "APBills",
        kind: StreamKind::Transaction,
        business_id: "RECORDID",
        fields: &[
            ("RECORDNO", I),
            ("RECORDID", S),
            ("VENDORID", S),
            ("VENDORNAME", S),
            ("STATE", S),
            ("WHENCREATED", T),
            ("WHENPOSTED", T),
            ("WHENDUE", T),
            ("WHENPAID", T),
            ("TOTALENTERED", D),
            ("TOTALPAID", D),
            ("TOTALDUE", D),
            ("CURRENCY", S),
            ("BASECURR", S),
            ("MODULEKEY", S),
            ("MEGAENTITYID", S),
            ("WHENMODIFIED", T),
        ],
    },
    Entry {
        object: "APPYMT",
        table: "APPayments",
        kind: StreamKind::Transaction,
        business_id: "DOCNUMBER",
        fields: &[
            ("RECORDNO", I),
            ("VENDORID", S),
            ("FINANCIALENTITY", S),
            ("PAYMENTMETHOD", S),
            ("PAYMENTDATE", T),
            ("STATE", S),
            ("DOCNUMBER", S),
            ("TOTALENTERED", D),
            ("CURRENCY", S),
            ("WHENCREATED", T),
            ("WHENMODIFIED", T),
        ],
    },
];

pub fn entry(object: &str) -> Option<&'static Entry> {
    ENTRIES
        .iter()
        .find(|e| e.object.eq_ignore_ascii_case(object))
}

pub fn all() -> &'static [Entry] {
    ENTRIES
}

/// The table name for an object that is not in the catalogue (a user-defined dimension, say): the object
/// name with characters Power BI refuses removed.
pub fn default_table_name(object: &str) -> String {
    if let Some(e) = entry(object) {
        return e.table.to_string();
    }
    let cleaned: String = object
        .chars()
        .filter(|c| !forbidden_table_char(*c))
        .collect();
    if cleaned.is_empty() {
        "Table".into()
    } else {
        cleaned
    }
}

/// The ASCII characters the swagger's table-name pattern excludes.
pub fn forbidden_table_char(c: char) -> bool {
    c.is_ascii() && "!\"$%&'()*+,./:;<=>?[\\]`{|}".contains(c)
}

/// Maps an Intacct `lookup` DATATYPE to a Power BI column type.
///
/// PERCENT and other decimals that may carry more than four places go to Double because Power BI's
/// Decimal is fixed at scale 4; currency amounts stay exact in Decimal.
pub fn column_type(intacct_type: &str, field: &str) -> DataType {
    match intacct_type.to_ascii_uppercase().as_str() {
        "INTEGER" | "SEQUENCE" if field == "RECORDNO" || field.ends_with("KEY") => DataType::Int64,
        "INTEGER" => DataType::Int64,
        "CURRENCY" => DataType::Decimal,
        "DECIMAL" if field.contains("RATE") => DataType::Double,
        "DECIMAL" => DataType::Decimal,
        "PERCENT" => DataType::Double,
        "BOOLEAN" => DataType::Boolean,
        "DATE" | "TIMESTAMP" => DataType::DateTime,
        _ => DataType::String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_table_name_is_legal_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for e in all() {
            assert!(!e.table.chars().any(forbidden_table_char), "{}", e.table);
            assert!(seen.insert(e.table), "duplicate table {}", e.table);
            assert!(
                e.fields.iter().any(|(f, _)| *f == "WHENMODIFIED"),
                "{} lacks WHENMODIFIED",
                e.object
            );
        }
    }

    #[test]
    fn user_defined_objects_get_sanitised_names() {
        assert_eq!(default_table_name("vendor"), "Vendors");
        assert_eq!(default_table_name("UDD.COSTCENTER(1)"), "UDDCOSTCENTER1");
    }

    #[test]
    fn lookup_types_map_to_power_bi_types() {
        assert_eq!(column_type("CURRENCY", "TOTALDUE"), DataType::Decimal);
        assert_eq!(column_type("PERCENT", "DISCOUNT"), DataType::Double);
        assert_eq!(column_type("TIMESTAMP", "WHENMODIFIED"), DataType::DateTime);
        assert_eq!(column_type("ENUM", "STATUS"), DataType::String);
        assert_eq!(column_type("BOOLEAN", "ONHOLD"), DataType::Boolean);
    }
}
