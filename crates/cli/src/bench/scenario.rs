//! The set-up of one scenario: a simulated company sized for the benchmark, both simulators, and
//! the changes between the full and the incremental sync, so the incremental sync has real work.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use ml_sim_intacct as sim_intacct;
use ml_sim_powerbi as sim_powerbi;

use super::child::sync_in_child;
use super::{BenchArgs, ChildSpec, SyncMeasure};

fn size_for(size: &mut sim_intacct::config::CompanySize, object: &str, n: u64) -> Result<()> {
    match object {
        "VENDOR" => size.vendors = n,
        "GLACCOUNT" => size.gl_accounts = n,
        "DEPARTMENT" => size.departments = n,
        "LOCATION" => size.locations = n,
        "CLASS" => size.classes = n,
        "PROJECT" => size.projects = n,
        "CUSTOMER" => size.customers = n,
        "EMPLOYEE" => size.employees = n,
        "ITEM" => size.items = n,
        "APBILL" => size.ap_bills = n,
        "APPYMT" => size.ap_payments = n,
        "GLENTRY" => size.gl_entries = n,
        // Balances are accounts x departments x locations x periods: their size follows the others.
        "GLACCOUNTBALANCE" => {}
        other => bail!("the benchmark cannot size {other}"),
    }
    Ok(())
}

/// Starts both simulators, runs a full sync in a child, makes changes, runs an incremental sync.
pub(super) async fn scenario(
    args: &BenchArgs,
    objects: &[String],
    records: u64,
    latency: Duration,
    limits: bool,
    time_scale: f64,
    one_thread: bool,
) -> Result<(SyncMeasure, SyncMeasure)> {
    let company: Vec<(String, u64)> = objects.iter().map(|o| (o.clone(), records)).collect();
    two_syncs(
        args,
        &company,
        latency,
        limits,
        time_scale,
        one_thread,
        args.changes,
    )
    .await
}

/// Both simulators with a company of `company`'s sizes (objects not named keep the demo firm's
/// sizes), a full sync in a child, `changes` updates an hour later (none: the clock stands still,
/// as between two runs of a frequent schedule), then a second sync in a new child with the same
/// store and master key, as the next `sync` from cron would be.
/// A full sync, `changes` records of each object updated, a second sync, then `more` syncs with
/// nothing changed, each in a child process over the same simulators and store.
#[allow(clippy::too_many_arguments)]
pub(super) async fn syncs(
    args: &BenchArgs,
    company: &[(String, u64)],
    latency: Duration,
    limits: bool,
    time_scale: f64,
    one_thread: bool,
    changes: u64,
    more: usize,
) -> Result<(SyncMeasure, SyncMeasure, Vec<SyncMeasure>)> {
    let objects: Vec<String> = company.iter().map(|(o, _)| o.clone()).collect();
    let mut icfg = sim_intacct::SimConfig::default();
    for (o, n) in company {
        size_for(&mut icfg.size, o, *n)?;
    }
    icfg.max_concurrency = args.concurrency;
    icfg.latency.per_request = latency;
    let intacct = Arc::new(sim_intacct::Simulator::start(icfg).await?);
    let mut pcfg = sim_powerbi::SimConfig::default();
    pcfg.limits.enforce = limits;
    pcfg.limits.minute = pcfg.limits.minute.div_f64(time_scale);
    pcfg.limits.hour = pcfg.limits.hour.div_f64(time_scale);
    let powerbi = Arc::new(sim_powerbi::Simulator::start(pcfg).await?);
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let spec = ChildSpec {
        intacct: intacct.endpoint(),
        powerbi: powerbi.api_url(),
        data_dir: dir.path().to_path_buf(),
        objects: objects.clone(),
        concurrency: args.concurrency,
        mode: args.mode.clone(),
        limits,
        time_scale,
        balances_through: crate::demo::last_closed_month(&intacct.now()),
        baseline: args.baseline,
    };
    let full = sync_in_child(&spec, &intacct, &powerbi, one_thread).await?;
    if changes > 0 {
        make_changes(&intacct, company, changes);
    }
    let incr = sync_in_child(&spec, &intacct, &powerbi, one_thread).await?;
    let mut after = Vec::with_capacity(more);
    for _ in 0..more {
        after.push(sync_in_child(&spec, &intacct, &powerbi, one_thread).await?);
    }
    Ok((full, incr, after))
}

/// [`syncs`] without the syncs after the second.
pub(super) async fn two_syncs(
    args: &BenchArgs,
    company: &[(String, u64)],
    latency: Duration,
    limits: bool,
    time_scale: f64,
    one_thread: bool,
    changes: u64,
) -> Result<(SyncMeasure, SyncMeasure)> {
    let (full, incr, _) = syncs(
        args, company, latency, limits, time_scale, one_thread, changes, 0,
    )
    .await?;
    Ok((full, incr))
}

/// Updates `changes` records of each object, spread over its key range, an hour after the full sync.
fn make_changes(sim: &sim_intacct::Simulator, company: &[(String, u64)], changes: u64) {
    sim.advance_clock(Duration::from_secs(3600));
    for (o, records) in company {
        let records = *records;
        let Some(def) = sim_intacct::data::defs::object_def(o) else {
            continue;
        };
        let Some(field) = ["NAME", "DESCRIPTION", "TITLE", "MEMO"]
            .into_iter()
            .find(|f| def.field_index(f).is_some())
        else {
            continue;
        };
        let n = changes.min(records);
        let step = (records / n.max(1)).max(1);
        for i in 0..n {
            let key = def.recno_base + i * step;
            sim.update(
                o,
                key,
                [(field.to_string(), format!("bench change {i}"))]
                    .into_iter()
                    .collect(),
            );
        }
    }
}
