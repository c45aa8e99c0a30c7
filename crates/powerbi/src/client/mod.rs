//! REST client for the workspace (`/groups/{groupId}/...`) form of the push-dataset API (service principals
//! cannot use "My workspace").
//!
//! Every call goes through `PowerBiClient::execute`: bearer token, one token refresh + resend on 403
//! TokenExpired/InvalidToken (the service refused the request, so resending cannot double anything), and error
//! parsing. Reads and idempotent writes also retry 429/5xx a few times; `POST rows` does not (the pusher paces and
//! retries it under the dataset's budgets), nor does dataset creation (a resend could create a second dataset).
//!
//! The files follow the jobs: [`PowerBiClient`] and its request plumbing (token, resend, error reading) apart from
//! the endpoint calls built on it, the types the service answers with, and the request bodies.

pub mod body;
mod endpoints;
mod http;
mod types;

pub use endpoints::odata_quote;
pub use http::PowerBiClient;
pub use types::{
    ColumnInfo, Dashboard, Dataset, Group, QueryResult, Refresh, Report, RequestInfo, Retention,
    TableInfo, Tile,
};
