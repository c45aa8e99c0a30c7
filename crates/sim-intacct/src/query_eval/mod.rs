//! Filters and ordering: the readByQuery query-string language, the `query` filter tree, typed
//! comparisons (timestamps compare as date-times, amounts as decimals) and Oracle-like ordering.
//!
//! - `filter`: the filter tree both languages parse into, and its literals prepared once per query
//! - `compare`: evaluation of a filter on a row, LIKE, and the ordering of rows
//! - `filter_xml`: the `query` function's `<filter>` element (schema check and conversion)
//! - `query_string`: readByQuery's SQL-like `<query>` string (tokenizer and parser)

mod compare;
mod filter;
mod filter_xml;
mod query_string;

pub use compare::{compare_holds, eval, like, order_cmp};
pub use filter::{Filter, FilterError, Op, prepare};
pub use filter_xml::{check_filter_schema, filter_from_xml};
pub use query_string::parse_query_string;
