//! `ping`, `intacct ping|query`, `powerbi ping|push`: the systems one at a time, with diagnoses.

use std::io::BufRead;
use std::path::Path;

use anyhow::{Context as _, Result};
use ml_intacct::Query;
use ml_powerbi::{Batch, BatchOutcome, Batcher, PushLimits, Pusher, TableTarget};

use crate::exit;
use ml_connector::app::{self, App};
use ml_connector::config::ConnectionConfig;
use ml_connector::destination::powerbi::pacing;

/// Both systems; one verdict each.
pub async fn both(app: &App, connection: Option<&str>) -> Result<u8> {
    let a = intacct(app, connection).await?;
    let b = powerbi(app, connection).await?;
    Ok(a.max(b))
}

pub async fn intacct(app: &App, connection: Option<&str>) -> Result<u8> {
    let cfg = app
        .config
        .connection(connection)
        .map_err(anyhow::Error::msg)?;
    let key = app.master_key()?;
    let client = match app::intacct_client(cfg, app.store.as_ref(), &key).await {
        Ok(c) => c,
        Err(e) => {
            crate::outln!("Intacct   FAIL  {e}");
            return Ok(exit::REFUSED);
        }
    };
    match client.ping().await {
        Ok(info) => {
            crate::outln!(
                "Intacct   OK    company {} entity {} user {}; session valid until {}",
                info.company_id,
                info.entity.as_deref().unwrap_or("(top level)"),
                info.user_id,
                info.expires_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "(not reported)".into())
            );
            Ok(check_objects(&client, cfg).await)
        }
        Err(e) => {
            crate::outln!("Intacct   FAIL  {e}");
            Ok(exit::REFUSED)
        }
    }
}

/// Every configured stream's object must exist in the company (`lookup`): a typo fails here,
/// with Intacct's words, instead of in the middle of the first sync.
async fn check_objects(client: &ml_intacct::IntacctClient, cfg: &ConnectionConfig) -> u8 {
    let mut code = exit::OK;
    for stream in &cfg.streams {
        let object = if stream.kind == ml_connector::catalogue::StreamKind::Balances {
            "GLACCOUNTBALANCE"
        } else {
            stream.object.as_str()
        };
        match client.lookup(object).await {
            Ok(_) => {}
            Err(e) if e.is_refusal() => {
                crate::outln!("Intacct   FAIL  stream {}: {e}", stream.object);
                code = code.max(exit::REFUSED);
            }
            Err(e) if e.kind == ml_intacct::ErrorKind::ObjectNotFound => {
                crate::outln!(
                    "Intacct   FAIL  stream {}: {e} Fix `object` in the configuration (`ml-connector intacct query OBJECT --limit 1` tries a name).",
                    stream.object
                );
                code = code.max(exit::USAGE);
            }
            Err(e) => {
                crate::outln!("Intacct   FAIL  stream {}: {e}", stream.object);
                code = code.max(exit::FAILURE);
            }
        }
    }
    if code == exit::OK && !cfg.streams.is_empty() {
        crate::outln!(
            "Intacct   OK    {} configured object(s) found",
            cfg.streams.len()
        );
    }
    code
}

/// `objects`: the catalogue, and with an app (`--check`) whether the company has each object.
pub async fn objects(app: Option<&App>, connection: Option<&str>) -> Result<u8> {
    let client = match app {
        Some(app) => {
            let cfg = app
                .config
                .connection(connection)
                .map_err(anyhow::Error::msg)?;
            let key = app.master_key()?;
            Some(app::intacct_client(cfg, app.store.as_ref(), &key).await?)
        }
        None => None,
    };
    crate::outln!(
        "{:<18} {:<14} {:<10} {:<12} {}",
        "object",
        "table",
        "kind",
        "business id",
        if client.is_some() {
            "in this company"
        } else {
            ""
        }
    );
    let mut code = exit::OK;
    for e in ml_connector::catalogue::all() {
        let found = match &client {
            None => String::new(),
            Some(c) => match c.lookup(e.object).await {
                Ok(def) => format!("yes ({} fields)", def.fields.len()),
                Err(err) if err.is_refusal() => {
                    crate::outln!("error: {err}");
                    return Ok(exit::REFUSED);
                }
                Err(err) => {
                    code = exit::FAILURE.max(code);
                    format!("no: {err}")
                }
            },
        };
        crate::outln!(
            "{:<18} {:<14} {:<10} {:<12} {}",
            e.object,
            e.table,
            format!("{:?}", e.kind).to_ascii_lowercase(),
            e.business_id,
            found
        );
    }
    crate::outln!(
        "Other objects (custom ones included) can be configured too: `[[connection.stream]] object = \"NAME\"` with `fields` or `[\"*\"]`; `ml-connector intacct query NAME --limit 1` tries one."
    );
    Ok(code)
}

pub async fn intacct_query(
    app: &App,
    connection: Option<&str>,
    object: &str,
    fields: Option<String>,
    filter: Option<String>,
    limit: u32,
) -> Result<u8> {
    let cfg = app
        .config
        .connection(connection)
        .map_err(anyhow::Error::msg)?;
    let key = app.master_key()?;
    let client = app::intacct_client(cfg, app.store.as_ref(), &key).await?;
    let object = object.to_ascii_uppercase();
    let fields: Vec<String> = match fields {
        Some(f) => f
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect(),
        None => match ml_connector::catalogue::entry(&object) {
            Some(e) => e.fields.iter().map(|(f, _)| f.to_string()).collect(),
            None => vec!["RECORDNO".into()],
        },
    };
    let filter = match filter {
        Some(text) => {
            Some(super::filter::parse(&text).map_err(|e| anyhow::anyhow!("--where: {e}"))?)
        }
        None => None,
    };
    let field_refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let mut query = Query::new(&object, &field_refs);
    query.filter = filter;
    query.page_size = Some(limit.clamp(1, 2000));
    let page = match client.query(query).await {
        Ok(page) => page,
        // Refused credentials or permissions are the user's to fix: said plainly, exit code 4.
        Err(e) if e.is_refusal() => {
            eprintln!("error: {e}");
            return Ok(exit::REFUSED);
        }
        Err(e) => return Err(e.into()),
    };
    for r in page.records.iter().take(limit as usize) {
        // Fields in Intacct's order (a JSON map would sort them).
        let mut line = String::from("{");
        for (i, (k, v)) in r.fields().iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&serde_json::to_string(k)?);
            line.push(':');
            line.push_str(&serde_json::to_string(v)?);
        }
        line.push('}');
        crate::outln!("{line}");
    }
    Ok(exit::OK)
}

pub async fn powerbi(app: &App, connection: Option<&str>) -> Result<u8> {
    let cfg = app
        .config
        .connection(connection)
        .map_err(anyhow::Error::msg)?;
    let key = app.master_key()?;
    let client = match app::powerbi_client(cfg, app.store.as_ref(), &key).await {
        Ok(c) => c,
        Err(e) => {
            crate::outln!("Power BI  FAIL  {e}");
            return Ok(exit::REFUSED);
        }
    };
    let group = match client.find_workspace(&cfg.powerbi.workspace).await {
        Ok(g) => g,
        Err(e) => {
            crate::outln!("Power BI  FAIL  {e}");
            return Ok(exit::REFUSED);
        }
    };
    match client.list_datasets(&group.id).await {
        Ok(ds) => {
            let ours = ds.iter().find(|d| d.name == cfg.powerbi.dataset);
            crate::outln!(
                "Power BI  OK    token issued; workspace {:?} ({}); {} dataset(s); {}",
                group.name,
                group.id,
                ds.len(),
                match ours {
                    Some(d) if d.add_rows_api_enabled == Some(true) =>
                        format!("push dataset {:?} found ({})", d.name, d.id),
                    Some(d) => format!(
                        "dataset {:?} exists but is NOT a push dataset: choose another name",
                        d.name
                    ),
                    None => format!(
                        "dataset {:?} will be created by the first sync",
                        cfg.powerbi.dataset
                    ),
                }
            );
            Ok(exit::OK)
        }
        Err(e) => {
            crate::outln!("Power BI  FAIL  {e}");
            Ok(exit::REFUSED)
        }
    }
}

/// Pushes a JSON-lines file into a table of the connection's dataset, within every push limit.
pub async fn powerbi_push(
    app: &App,
    connection: Option<&str>,
    table: &str,
    file: &Path,
) -> Result<u8> {
    let cfg = app
        .config
        .connection(connection)
        .map_err(anyhow::Error::msg)?;
    let state =
        app.store.dataset(&cfg.name).await?.context(
            "this connection has no dataset yet: run `ml-connector sync` once to create it",
        )?;
    let key = app.master_key()?;
    let client = app::powerbi_client(cfg, app.store.as_ref(), &key).await?;
    let limits = PushLimits::default();
    let pusher = Pusher::new(client, limits.clone());
    let target = TableTarget {
        group_id: state.group_id,
        dataset_id: state.dataset_id,
        table: table.to_string(),
    };
    pacing::seed(
        app.store.as_ref(),
        app.clock.as_ref(),
        &pusher,
        &target.dataset_id,
    )
    .await?;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let mut batcher = Batcher::new(&limits);
    let mut sent: u64 = 0;
    let mut line_no = 0usize;
    let mut pending: Vec<Batch> = Vec::new();
    for line in reader.lines() {
        line_no += 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{line_no}: not a JSON object", file.display()))?;
        anyhow::ensure!(
            v.is_object(),
            "{}:{line_no}: each line must be one JSON object (a row)",
            file.display()
        );
        let compact = v.to_string();
        pending.extend(
            batcher
                .push(&compact)
                .map_err(|e| anyhow::anyhow!("{}:{line_no}: {e}", file.display()))?,
        );
    }
    pending.extend(batcher.finish());
    // Rows are read whole before the first POST so a malformed line stops the push before anything
    // is sent (a file of rows is small next to what the sync moves).
    for b in pending {
        let rows = b.row_count() as u64;
        let report = pusher.send(&target, b, sent).await;
        pacing::remember(
            app.store.as_ref(),
            app.clock.as_ref(),
            &pusher,
            &target.dataset_id,
            &report,
        )
        .await;
        match report.outcome {
            BatchOutcome::Accepted => {
                sent += rows;
                crate::outln!(
                    "batch {}: {rows} rows accepted (RequestId {})",
                    report.batch_id,
                    report.request_id.unwrap_or_default()
                );
            }
            BatchOutcome::Ambiguous { why } => {
                anyhow::bail!(
                    "batch {} ({rows} rows) has an unknown fate: {why}. {sent} rows before it were accepted; check the table before pushing the rest again",
                    report.batch_id
                )
            }
            BatchOutcome::Failed(e) => {
                anyhow::bail!("{e}. {sent} rows before this batch were accepted")
            }
        }
    }
    crate::outln!("{sent} rows pushed into {table}");
    Ok(exit::OK)
}
