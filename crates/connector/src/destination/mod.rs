//! Where a connection's rows go, behind one trait.
//!
//! The pipeline stages every record and its change (insert, update, delete, by key) in the store,
//! then hands the destination the stream: the destination reads from the store what changed since it
//! last confirmed (its outbox, or the whole mirror when it can only rebuild), delivers it, and
//! confirms. Only after [`Destination::deliver`] returns `Ok` does the pipeline move the stream's
//! cursor. The shape follows the sinks of mature data movers (a request builder, a service that
//! sends, the retry logic apart): the Power BI specifics stay in [`powerbi`], and a second
//! destination is a sibling module implementing the same trait.
//!
//! | module | job |
//! |---|---|
//! | [`fabric`] | Fabric open mirroring: Parquet change files in a mirrored database's landing zone, merged by key |
//! | [`powerbi`] | Power BI push datasets: the dataset and its tables, rebuilds of replace tables, the append outbox, pacing across processes |
//! | [`preview`] | what a destination would push, for `sync --dry-run` (plain data) |

pub mod fabric;
pub mod powerbi;
pub mod preview;

pub use preview::{BudgetUse, DeliveryPreview, TablePreview};

use std::any::Any;

use async_trait::async_trait;

use crate::pipeline::error::PipelineError;
use crate::pipeline::events::Events;
use crate::pipeline::job::{Context, Job};
use crate::pipeline::plan::StreamPlan;
use crate::pipeline::preview::StreamRead;
use crate::pipeline::report::StreamReport;

/// A destination of staged changes.
///
/// What every implementation must guarantee (DESIGN.md's invariants, stated for this seam):
///
/// 1. **Confirmation before the cursor moves.** `deliver` returns `Ok` only when everything the
///    stream staged before the call is held by the destination, as far as the destination can know,
///    and it has recorded that in the store (`mark_delivered`, `mark_reloaded` or its own state) in
///    the same transaction that says which rows it covers. The pipeline commits the stream's cursor
///    only after that, so a crash anywhere before it means the next run reads and delivers again.
/// 2. **Idempotent on resume.** Calling `settle` and then `deliver` again after any interruption
///    (a crash, a kill, a cancelled run, a failed call) converges to the same destination state as
///    one uninterrupted run: nothing lost, nothing doubled. A destination that cannot update by key
///    gets there by rebuilding from the mirror; one that can, by re-sending keyed changes.
/// 3. **A delivery of unknown fate is never re-sent blindly.** When a request may or may not have
///    been applied (a timeout after sending, a dropped connection, a crash between sending and
///    recording), the destination records it as in flight *before* sending, and `settle` decides its
///    fate from the destination's own state (counting rows, listing files) before anything is sent
///    again; where that cannot be decided, it fails loudly and says how to rebuild.
/// 4. **Loud, typed failures.** A refusal (a row the destination rejects, a permission) fails this
///    stream only, with the remote system's own error text; transient failures may be retried inside
///    the call, bounded, and never beyond what the remote system's limits allow.
/// 5. **Cancellation.** When the run's cancel token fires, the destination sends nothing new, awaits
///    what is in flight, records it, and returns [`PipelineError::Interrupted`].
#[async_trait]
pub trait Destination: Send + Sync + 'static {
    /// A short name for logs and messages ("Power BI push dataset").
    fn describe(&self) -> &'static str;

    /// Once per run, before any stream delivers (streams read Intacct meanwhile): the
    /// destination's containers exist and match the planned schemas. A table it had to create or
    /// change is recorded as needing a full load (the store's `mark_dirty`), so its `deliver`
    /// reloads it; one whose rows need every record read again has its cursor reset, and the
    /// pipeline reads the whole object before delivering it.
    async fn prepare(&self, ctx: &Context, plans: &[&StreamPlan]) -> Result<(), PipelineError>;

    /// Before a stream's delivery (its pages of this run are staged, none sent yet): settles what
    /// an earlier run left of unknown fate and delivers what it staged but did not deliver
    /// (guarantee 3). Deliveries (`settle` then `deliver`) of a run's streams never overlap.
    async fn settle(&self, job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError>;

    /// After the stream's pages are staged: delivers what changed since the last confirmation and
    /// confirms it (guarantee 1). Adds what it sent to `report.pushed` and the table's size to
    /// `report.table_rows`.
    async fn deliver(&self, job: &Job<'_>, report: &mut StreamReport) -> Result<(), PipelineError>;

    /// Relays the destination's own notices (waits for a budget) to the run's events while it runs.
    fn relay_events(&self, _events: &Events) -> Option<tokio::task::JoinHandle<()>> {
        None
    }

    /// For `sync --dry-run`: what delivering each stream of `reads` would send and what the
    /// destination's limits make of it, from the store alone. Sends nothing, records nothing.
    /// `None`: this destination cannot tell (the dry run then shows only what would be read).
    async fn preview(
        &self,
        _ctx: &Context,
        _reads: &[StreamRead],
        _full: bool,
    ) -> Result<Option<DeliveryPreview>, PipelineError> {
        Ok(None)
    }

    /// For commands that only make sense for one kind of destination (`replay`, `verify`).
    fn as_any(&self) -> &dyn Any;
}
