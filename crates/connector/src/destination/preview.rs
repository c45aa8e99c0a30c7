//! What a destination would do with a run's streams, for `sync --dry-run`: plain data, apart
//! from the trait so the pipeline's preview can hold it without importing the trait's module.

/// What a destination would do with a run's streams ([`super::Destination::preview`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryPreview {
    /// Where the rows go ("dataset Sage Intacct").
    pub target: String,
    /// The destination's hourly budget as it stands, when it has one.
    pub budget: Option<BudgetUse>,
    /// One per stream of the reads, in their order.
    pub tables: Vec<TablePreview>,
}

/// An hourly budget: what the last hour used of it, and what is left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BudgetUse {
    pub rows_used: u64,
    pub rows_left: u64,
    pub posts_used: u64,
    /// The rows an hour allows.
    pub rows_per_hour: u64,
}

/// What delivering one stream would send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TablePreview {
    pub object: String,
    pub table: String,
    /// Rows the delivery would push (at most: records read may turn out unchanged).
    pub rows: u64,
    /// Why that many: "rebuild: the table is marked for one", "waiting in the outbox", ...
    pub why: String,
    /// Replace tables: the whole table, pushed again on a rebuild (the mirror's rows).
    pub rebuild_rows: Option<u64>,
    /// Replace tables: already marked as differing from the mirror (a rebuild is due).
    pub dirty: bool,
    /// Append tables: rows staged but not yet delivered.
    pub outbox: Option<u64>,
    /// Whether the push fits the budget now ("fits", or when it would be postponed to and why).
    pub budget: String,
    /// The push would not start now (postponed, or waiting for the budget).
    pub postponed: bool,
}
