//! `ml-connector bench`: the end-to-end benchmark against both simulators (see BENCHMARKS.md).

use anyhow::Result;

/// What to measure.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Vendors in the simulated company.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    anyhow::bail!("bench is being written (records = {})", args.records)
}
