//! The push dataset a run delivers to, and the one durable mark every path that makes a Power BI
//! table differ from the mirror sets first.

use ml_powerbi::TableTarget;

use crate::pipeline::error::PipelineError;
use crate::pipeline::job::Context;

/// The dataset this run delivers to (found, adopted or created by [`super::dataset::ensure`]).
#[derive(Debug, Clone)]
pub struct Target {
    pub group_id: String,
    pub dataset_id: String,
    /// The dataset was (re)created in this run: every replace table must be loaded.
    pub recreated: bool,
}

impl Target {
    /// One table of the dataset, as the pusher addresses it.
    pub fn table(&self, table: &str) -> TableTarget {
        TableTarget {
            group_id: self.group_id.clone(),
            dataset_id: self.dataset_id.clone(),
            table: table.to_string(),
        }
    }
}

/// Marks a replace table as needing a rebuild, durably, before anything makes the Power BI table differ
/// from the mirror (deleting its rows, changing its schema).
pub async fn mark_dirty(ctx: &Context, stream: &str, why: &str) -> Result<(), PipelineError> {
    ctx.store.mark_dirty(&ctx.config.name, stream).await?;
    tracing::info!(stream, reason = why, "table to be rebuilt from the mirror");
    Ok(())
}
