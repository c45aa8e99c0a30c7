//! Object definitions: the fields of each simulated object, their Intacct data types, lookup metadata,
//! and the database characters readByQuery strings use for validated lists.
//!
//! Over 700 lines on purpose: it is one table, an object's definition a screen, read top to bottom
//! like the `lookup` answers it reproduces; split, an object's fields would stand apart from the
//! others they are compared with.

/// Intacct `DATATYPE` as `lookup` reports it; drives comparisons in filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Text,
    Integer,
    Decimal,
    Currency,
    Boolean,
    Date,
    Timestamp,
    Enum,
}

impl FieldType {
    pub fn lookup_name(self) -> &'static str {
        match self {
            FieldType::Text => "TEXT",
            FieldType::Integer => "INTEGER",
            FieldType::Decimal => "DECIMAL",
            FieldType::Currency => "CURRENCY",
            FieldType::Boolean => "BOOLEAN",
            FieldType::Date => "DATE",
            FieldType::Timestamp => "TIMESTAMP",
            FieldType::Enum => "ENUM",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct FieldDef {
    pub id: &'static str,
    pub label: &'static str,
    pub ty: FieldType,
    /// (database character as readByQuery strings use it, display value as output shows it)
    pub valid: &'static [(&'static str, &'static str)],
    pub custom: bool,
    pub readonly: bool,
    pub required: bool,
}

const fn f(id: &'static str, label: &'static str, ty: FieldType) -> FieldDef {
    FieldDef {
        id,
        label,
        ty,
        valid: &[],
        custom: false,
        readonly: false,
        required: false,
    }
}

const fn ro(id: &'static str, label: &'static str, ty: FieldType) -> FieldDef {
    FieldDef {
        readonly: true,
        ..f(id, label, ty)
    }
}

const fn req(id: &'static str, label: &'static str) -> FieldDef {
    FieldDef {
        required: true,
        ..f(id, label, FieldType::Text)
    }
}

const fn en(
    id: &'static str,
    label: &'static str,
    valid: &'static [(&'static str, &'static str)],
) -> FieldDef {
    FieldDef {
        valid,
        ..f(id, label, FieldType::Enum)
    }
}

const fn custom(
    id: &'static str,
    label: &'static str,
    ty: FieldType,
    valid: &'static [(&'static str, &'static str)],
) -> FieldDef {
    FieldDef {
        custom: true,
        valid,
        ..f(id, label, ty)
    }
}

use FieldType::*;

pub const STATUS_VALUES: &[(&str, &str)] = &[("T", "active"), ("F", "inactive")];

/// Which generator builds an object's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Vendor,
    GlAccount,
    Department,
    Location,
    Class,
    Project,
    Customer,
    Employee,
    Item,
    ApBill,
    ApPymt,
    GlEntry,
    GlAccountBalance,
    AuditHistory,
    UserInfo,
}

#[derive(Debug)]
pub struct ObjectDef {
    pub name: &'static str,
    pub kind: Kind,
    /// The field holding the store key (RECORDNO, or ID for AUDITHISTORY).
    pub key_field: &'static str,
    /// The business id `readByName` matches (VENDORID, ACCOUNTNO, LOGINID...).
    pub name_field: &'static str,
    /// First RECORDNO of generated rows, so objects do not all start at 1.
    pub recno_base: u64,
    pub fields: &'static [FieldDef],
}

impl ObjectDef {
    pub fn field_index(&self, id: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.id.eq_ignore_ascii_case(id))
    }

    pub fn key_index(&self) -> usize {
        self.field_index(self.key_field).expect("key field defined")
    }

    /// The field whose value AUDITHISTORY writes as `OBJECTKEY` for this object, or `None` where it
    /// writes the `RECORDNO--REC` form.
    ///
    /// Sage's AUDITHISTORY reference defines `OBJECTKEY` as the object's unique name field, which
    /// differs by object (developer.intacct.com, "Audit trails"; RECORDNO on APBILL, LOGINID on
    /// USERINFO). Estuary's Sage Intacct connector met it on real tenants (estuary/connectors
    /// issue 5207, pull request 5217): `VENDORID` for a vendor, `CUSTOMERID` for a customer, and
    /// `123--REC` only for objects keyed by RECORDNO. The other master-data objects are named by
    /// their ID field as those two are (the field `readByName` takes); documents, GL entries and
    /// balances have no unique name but their RECORDNO.
    pub fn audit_key_field(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Vendor => Some("VENDORID"),
            Kind::Customer => Some("CUSTOMERID"),
            Kind::GlAccount => Some("ACCOUNTNO"),
            Kind::Department => Some("DEPARTMENTID"),
            Kind::Location => Some("LOCATIONID"),
            Kind::Class => Some("CLASSID"),
            Kind::Project => Some("PROJECTID"),
            Kind::Employee => Some("EMPLOYEEID"),
            Kind::Item => Some("ITEMID"),
            Kind::UserInfo => Some("LOGINID"),
            Kind::ApBill
            | Kind::ApPymt
            | Kind::GlEntry
            | Kind::GlAccountBalance
            | Kind::AuditHistory => None,
        }
    }

    /// The record tag used by readByQuery/readMore (lowercase) and query/read (uppercase).
    pub fn lower_tag(&self) -> String {
        self.name.to_ascii_lowercase()
    }
}

macro_rules! tail {
    () => {
        [
            ro("WHENCREATED", "When created", Timestamp),
            ro("WHENMODIFIED", "When modified", Timestamp),
            ro("CREATEDBY", "Created by", Integer),
            ro("MODIFIEDBY", "Modified by", Integer),
            ro("MEGAENTITYKEY", "Created at - Entity key", Integer),
            ro("MEGAENTITYID", "Created at - Entity ID", Text),
            ro("MEGAENTITYNAME", "Created at - Entity name", Text),
            ro("RECORD_URL", "Record URL", Text),
        ]
    };
}

/// Joins an object's own fields with the common tail at compile time (FieldDef is Copy).
const fn concat<const A: usize, const B: usize, const C: usize>(
    a: [FieldDef; A],
    b: [FieldDef; B],
) -> [FieldDef; C] {
    assert!(A + B == C);
    let mut res: [FieldDef; C] = [f("", "", Text); C];
    let mut i = 0;
    while i < A {
        res[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        res[A + j] = b[j];
        j += 1;
    }
    res
}

static VENDOR_FIELDS: [FieldDef; 25] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("VENDORID", "Vendor ID"),
        req("NAME", "Vendor name"),
        f("PARENTKEY", "Parent key", Integer),
        f("PARENTID", "Parent", Text),
        f("VENDTYPE", "Vendor type ID", Text),
        en("STATUS", "Status", STATUS_VALUES),
        f("ONETIME", "One-time", Boolean),
        f("ONHOLD", "On hold", Boolean),
        f("TAXID", "Tax ID", Text),
        f("APACCOUNT", "Default AP account", Text),
        f("TERMNAME", "Term", Text),
        f("CURRENCY", "Default currency", Text),
        f("CREDITLIMIT", "Credit limit", Currency),
        ro("TOTALDUE", "Total due", Currency),
        f("DISPLAYCONTACT.EMAIL1", "Primary email address", Text),
        custom(
            "VENDOR_TIER",
            "Vendor tier",
            Enum,
            &[("Gold", "Gold"), ("Silver", "Silver"), ("Bronze", "Bronze")],
        ),
    ],
    tail!(),
);

static GLACCOUNT_FIELDS: [FieldDef; 19] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("ACCOUNTNO", "Primary account no."),
        req("TITLE", "Title"),
        en(
            "ACCOUNTTYPE",
            "Account type",
            &[("N", "balancesheet"), ("I", "incomestatement")],
        ),
        en(
            "NORMALBALANCE",
            "Normal balance",
            &[("1", "debit"), ("-1", "credit")],
        ),
        en(
            "CLOSINGTYPE",
            "Period end closing type",
            &[("N", "non-closing account"), ("C", "closing account")],
        ),
        f("CATEGORY", "Category", Text),
        en("STATUS", "Status", STATUS_VALUES),
        f("REQUIREDEPT", "Require department", Boolean),
        f("REQUIRELOC", "Require location", Boolean),
        custom("REPORTING_GROUP", "Reporting group", Text, &[]),
    ],
    tail!(),
);

static DEPARTMENT_FIELDS: [FieldDef; 15] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("DEPARTMENTID", "Department ID"),
        req("TITLE", "Department name"),
        f("PARENTKEY", "Parent key", Integer),
        f("PARENTID", "Parent department", Text),
        f("SUPERVISORID", "Manager employee ID", Text),
        en("STATUS", "Status", STATUS_VALUES),
    ],
    tail!(),
);

static LOCATION_FIELDS: [FieldDef; 15] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("LOCATIONID", "Location ID"),
        req("NAME", "Location name"),
        f("PARENTID", "Parent location", Text),
        en("STATUS", "Status", STATUS_VALUES),
        f("CURRENCY", "Base currency", Text),
        f("STARTDATE", "Start date", Date),
    ],
    tail!(),
);

static CLASS_FIELDS: [FieldDef; 15] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("CLASSID", "Class ID"),
        req("NAME", "Name"),
        f("DESCRIPTION", "Description", Text),
        en("STATUS", "Status", STATUS_VALUES),
        f("PARENTKEY", "Parent key", Integer),
        f("PARENTID", "Parent class", Text),
    ],
    tail!(),
);

static PROJECT_FIELDS: [FieldDef; 21] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("PROJECTID", "Project ID"),
        req("NAME", "Project name"),
        en(
            "PROJECTSTATUS",
            "Project status",
            &[
                ("Draft", "Draft"),
                ("In Progress", "In Progress"),
                ("Completed", "Completed"),
                ("On Hold", "On Hold"),
            ],
        ),
        en("STATUS", "Status", STATUS_VALUES),
        f("PARENTID", "Parent project", Text),
        f("CUSTOMERID", "Customer ID", Text),
        f("LOCATIONID", "Location ID", Text),
        f("DEPARTMENTID", "Department ID", Text),
        f("BEGINDATE", "Begin date", Date),
        f("ENDDATE", "End date", Date),
        f("BUDGETAMOUNT", "Budgeted billing amount", Currency),
        f("BUDGETID", "Budget ID", Text),
    ],
    tail!(),
);

static CUSTOMER_FIELDS: [FieldDef; 20] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("CUSTOMERID", "Customer ID"),
        req("NAME", "Customer name"),
        f("PARENTKEY", "Parent key", Integer),
        f("PARENTID", "Parent customer", Text),
        en("STATUS", "Status", STATUS_VALUES),
        f("ONHOLD", "On hold", Boolean),
        f("ONETIME", "One-time", Boolean),
        f("CUSTTYPE", "Customer type ID", Text),
        f("CREDITLIMIT", "Credit limit", Currency),
        ro("TOTALDUE", "Total due", Currency),
        f("TERMNAME", "Term", Text),
    ],
    tail!(),
);

static EMPLOYEE_FIELDS: [FieldDef; 17] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("EMPLOYEEID", "Employee ID"),
        f("PERSONALINFO.CONTACTNAME", "Contact name", Text),
        f("TITLE", "Title", Text),
        f("DEPARTMENTID", "Department ID", Text),
        f("LOCATIONID", "Location ID", Text),
        f("STARTDATE", "Start date", Date),
        f("ENDDATE", "Termination date", Date),
        en("STATUS", "Status", STATUS_VALUES),
    ],
    tail!(),
);

static ITEM_FIELDS: [FieldDef; 16] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("ITEMID", "Item ID"),
        req("NAME", "Name"),
        en("STATUS", "Status", STATUS_VALUES),
        en(
            "ITEMTYPE",
            "Item type",
            &[
                ("I", "Inventory"),
                ("NI", "Non-Inventory"),
                ("NP", "Non-Inventory (Purchase only)"),
                ("NS", "Non-Inventory (Sales only)"),
                ("K", "Kit"),
            ],
        ),
        f("PRODUCTLINEID", "Product line ID", Text),
        f("GLGROUP", "Item GL group", Text),
        f("STANDARD_COST", "Standard cost", Currency),
    ],
    tail!(),
);

static APBILL_FIELDS: [FieldDef; 25] = [
    ro("RECORDNO", "Record number", Integer),
    f("RECORDID", "Bill number", Text),
    req("VENDORID", "Vendor ID"),
    ro("VENDORNAME", "Vendor name", Text),
    en(
        "STATE",
        "State",
        &[
            ("D", "Draft"),
            ("S", "Submitted"),
            ("A", "Posted"),
            ("PA", "Partially Paid"),
            ("P", "Paid"),
        ],
    ),
    f("DESCRIPTION", "Description", Text),
    f("WHENCREATED", "Date", Date),
    f("WHENPOSTED", "GL posting date", Date),
    f("WHENDUE", "Due date", Date),
    ro("WHENPAID", "Date fully paid", Date),
    ro("TOTALENTERED", "Total entered", Currency),
    ro("TOTALPAID", "Total paid", Currency),
    ro("TOTALDUE", "Total due", Currency),
    f("CURRENCY", "Transaction currency", Text),
    f("BASECURR", "Base currency", Text),
    ro("MODULEKEY", "Module key", Text),
    f("TERMNAME", "Term", Text),
    // The bill's WHENCREATED is its date (a DATE the user enters, back-datable); when it was
    // entered is AUDITWHENCREATED, a TIMESTAMP the system sets.
    ro("AUDITWHENCREATED", "Audit when created", Timestamp),
    ro("WHENMODIFIED", "When modified", Timestamp),
    ro("CREATEDBY", "Created by", Integer),
    ro("MODIFIEDBY", "Modified by", Integer),
    ro("MEGAENTITYKEY", "Created at - Entity key", Integer),
    ro("MEGAENTITYID", "Created at - Entity ID", Text),
    ro("MEGAENTITYNAME", "Created at - Entity name", Text),
    ro("RECORD_URL", "Record URL", Text),
];

static APPYMT_FIELDS: [FieldDef; 19] = [
    ro("RECORDNO", "Record number", Integer),
    req("VENDORID", "Vendor ID"),
    ro("VENDORNAME", "Vendor name", Text),
    f("FINANCIALENTITY", "Bank account", Text),
    en(
        "PAYMENTMETHOD",
        "Payment method",
        &[
            ("Printed Check", "Printed Check"),
            ("EFT", "EFT"),
            ("ACH", "ACH"),
            ("Cash", "Cash"),
        ],
    ),
    f("PAYMENTDATE", "Payment date", Date),
    en(
        "STATE",
        "State",
        &[
            ("C", "Complete"),
            ("D", "Draft"),
            ("A", "Approved"),
            ("V", "Voided"),
            ("S", "Submitted"),
        ],
    ),
    f("DOCNUMBER", "Document number", Text),
    ro("TOTALENTERED", "Amount", Currency),
    f("CURRENCY", "Currency", Text),
    f("WHENCREATED", "Date", Date),
    ro("AUDITWHENCREATED", "Audit when created", Timestamp),
    ro("WHENMODIFIED", "When modified", Timestamp),
    ro("CREATEDBY", "Created by", Integer),
    ro("MODIFIEDBY", "Modified by", Integer),
    ro("MEGAENTITYKEY", "Created at - Entity key", Integer),
    ro("MEGAENTITYID", "Created at - Entity ID", Text),
    ro("MEGAENTITYNAME", "Created at - Entity name", Text),
    ro("RECORD_URL", "Record URL", Text),
];

static GLENTRY_FIELDS: [FieldDef; 18] = [
    ro("RECORDNO", "Record number", Integer),
    f("BATCHNO", "Journal entry number", Integer),
    f("LINE_NO", "Line number", Integer),
    en("TR_TYPE", "Transaction type", &[("1", "1"), ("-1", "-1")]),
    f("ENTRY_DATE", "Entry date", Date),
    f("AMOUNT", "Base amount", Currency),
    f("TRX_AMOUNT", "Transaction amount", Currency),
    f("ACCOUNTNO", "Account number", Text),
    f("DEPARTMENT", "Department", Text),
    f("LOCATION", "Location", Text),
    f("CURRENCY", "Transaction currency", Text),
    f("BASECURR", "Base currency", Text),
    f("DESCRIPTION", "Memo", Text),
    en(
        "STATE",
        "State",
        &[("Posted", "Posted"), ("Draft", "Draft")],
    ),
    ro("WHENCREATED", "When created", Timestamp),
    ro("WHENMODIFIED", "When modified", Timestamp),
    ro("CREATEDBY", "Created by", Integer),
    ro("MODIFIEDBY", "Modified by", Integer),
];

static GLACCOUNTBALANCE_FIELDS: [FieldDef; 20] = [
    ro("RECORDNO", "Record number", Integer),
    f("PERIOD", "Reporting period", Text),
    f("BOOKID", "Book", Text),
    f("CURRENCY", "Currency", Text),
    f("ACCOUNTNO", "Account number", Text),
    f("ACCOUNTTITLE", "Account title", Text),
    f("ACCOUNTREC", "Account record number", Integer),
    f("DEPARTMENTID", "Department ID", Text),
    f("DEPARTMENTNAME", "Department name", Text),
    f("LOCATIONID", "Location ID", Text),
    f("LOCATIONNAME", "Location name", Text),
    f("OPENBAL", "Opening balance", Currency),
    f("TOTDEBIT", "Total debit", Currency),
    f("TOTCREDIT", "Total credit", Currency),
    f("TOTADJDEBIT", "Total adjusting debit", Currency),
    f("TOTADJCREDIT", "Total adjusting credit", Currency),
    f("FORBAL", "Period net", Currency),
    f("ENDBAL", "Ending balance", Currency),
    ro("WHENCREATED", "When created", Timestamp),
    ro("WHENMODIFIED", "When modified", Timestamp),
];

static AUDITHISTORY_FIELDS: [FieldDef; 9] = [
    ro("ID", "ID", Integer),
    f("OBJECTTYPE", "Object type", Text),
    f("OBJECTKEY", "Object key", Text),
    f("OBJECTDESC", "Object description", Text),
    f("USERID", "User ID", Text),
    en(
        "ACCESSMODE",
        "Access mode",
        &[
            ("Delete", "D"),
            ("Create", "C"),
            ("Modify", "M"),
            ("Access", "A"),
        ],
    ),
    f("ACCESSTIME", "Access time", Timestamp),
    en(
        "SOURCE",
        "Source",
        &[
            ("api", "api"),
            ("ui", "ui"),
            ("csv", "csv"),
            ("system", "system"),
        ],
    ),
    f("WORKFLOWACTION", "Workflow action", Text),
];

static USERINFO_FIELDS: [FieldDef; 15] = concat(
    [
        ro("RECORDNO", "Record number", Integer),
        req("LOGINID", "User ID"),
        f("DESCRIPTION", "User name", Text),
        en(
            "USERTYPE",
            "User type",
            &[
                ("B", "business user"),
                ("E", "employee"),
                ("P", "project manager"),
                ("C", "dashboard user"),
            ],
        ),
        en(
            "ADMIN",
            "Admin privileges",
            &[("off", "off"), ("limited", "limited"), ("full", "full")],
        ),
        en("STATUS", "Status", STATUS_VALUES),
        f("CONTACTINFO.EMAIL1", "Email address", Text),
    ],
    tail!(),
);

pub static OBJECTS: &[ObjectDef] = &[
    ObjectDef {
        name: "VENDOR",
        kind: Kind::Vendor,
        key_field: "RECORDNO",
        name_field: "VENDORID",
        recno_base: 1,
        fields: &VENDOR_FIELDS,
    },
    ObjectDef {
        name: "GLACCOUNT",
        kind: Kind::GlAccount,
        key_field: "RECORDNO",
        name_field: "ACCOUNTNO",
        recno_base: 1,
        fields: &GLACCOUNT_FIELDS,
    },
    ObjectDef {
        name: "DEPARTMENT",
        kind: Kind::Department,
        key_field: "RECORDNO",
        name_field: "DEPARTMENTID",
        recno_base: 1,
        fields: &DEPARTMENT_FIELDS,
    },
    ObjectDef {
        name: "LOCATION",
        kind: Kind::Location,
        key_field: "RECORDNO",
        name_field: "LOCATIONID",
        recno_base: 1,
        fields: &LOCATION_FIELDS,
    },
    ObjectDef {
        name: "CLASS",
        kind: Kind::Class,
        key_field: "RECORDNO",
        name_field: "CLASSID",
        recno_base: 1,
        fields: &CLASS_FIELDS,
    },
    ObjectDef {
        name: "PROJECT",
        kind: Kind::Project,
        key_field: "RECORDNO",
        name_field: "PROJECTID",
        recno_base: 1,
        fields: &PROJECT_FIELDS,
    },
    ObjectDef {
        name: "CUSTOMER",
        kind: Kind::Customer,
        key_field: "RECORDNO",
        name_field: "CUSTOMERID",
        recno_base: 1,
        fields: &CUSTOMER_FIELDS,
    },
    ObjectDef {
        name: "EMPLOYEE",
        kind: Kind::Employee,
        key_field: "RECORDNO",
        name_field: "EMPLOYEEID",
        recno_base: 1,
        fields: &EMPLOYEE_FIELDS,
    },
    ObjectDef {
        name: "ITEM",
        kind: Kind::Item,
        key_field: "RECORDNO",
        name_field: "ITEMID",
        recno_base: 1,
        fields: &ITEM_FIELDS,
    },
    ObjectDef {
        name: "APBILL",
        kind: Kind::ApBill,
        key_field: "RECORDNO",
        name_field: "RECORDID",
        recno_base: 1001,
        fields: &APBILL_FIELDS,
    },
    ObjectDef {
        name: "APPYMT",
        kind: Kind::ApPymt,
        key_field: "RECORDNO",
        name_field: "DOCNUMBER",
        recno_base: 5001,
        fields: &APPYMT_FIELDS,
    },
    ObjectDef {
        name: "GLENTRY",
        kind: Kind::GlEntry,
        key_field: "RECORDNO",
        name_field: "RECORDNO",
        recno_base: 100_001,
        fields: &GLENTRY_FIELDS,
    },
    ObjectDef {
        name: "GLACCOUNTBALANCE",
        kind: Kind::GlAccountBalance,
        key_field: "RECORDNO",
        name_field: "RECORDNO",
        recno_base: 1,
        fields: &GLACCOUNTBALANCE_FIELDS,
    },
    ObjectDef {
        name: "AUDITHISTORY",
        kind: Kind::AuditHistory,
        key_field: "ID",
        name_field: "ID",
        recno_base: 900_001,
        fields: &AUDITHISTORY_FIELDS,
    },
    ObjectDef {
        name: "USERINFO",
        kind: Kind::UserInfo,
        key_field: "RECORDNO",
        name_field: "LOGINID",
        recno_base: 1,
        fields: &USERINFO_FIELDS,
    },
];

/// Finds an object by its integration name (case-insensitive, as the gateway accepts).
pub fn object_def(name: &str) -> Option<&'static ObjectDef> {
    OBJECTS
        .iter()
        .find(|o| o.name.eq_ignore_ascii_case(name.trim()))
}
