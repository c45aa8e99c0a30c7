//! `audit search|verify|prune`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use ml_store::{AuditEntry, AuditFilter, RunId};

use crate::args::{AuditCommand, AuditFormat};
use crate::exit;
use ml_connector::app::App;

struct SendStdout;

/// Entries are read this many at a time.
const PAGE: u64 = 1000;

impl std::io::Write for SendStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stdout().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

fn time(s: &Option<String>, what: &str) -> Result<Option<DateTime<Utc>>> {
    s.as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&Utc))
                .with_context(|| {
                    format!(
                        "--{what} {t:?}: expected an RFC 3339 time such as 2026-11-01T00:00:00Z"
                    )
                })
        })
        .transpose()
}

/// The audit trail names a stream by its Intacct object; the user may name it by its table too.
/// A name the configuration does not know is searched as given (a stream configured once).
fn stream_object(streams: Option<&[ml_connector::config::StreamConfig]>, name: &str) -> String {
    streams
        .unwrap_or_default()
        .iter()
        .find(|s| s.table.eq_ignore_ascii_case(name) || s.object.eq_ignore_ascii_case(name))
        .map(|s| s.object.clone())
        .unwrap_or_else(|| name.to_ascii_uppercase())
}

/// Hands `each` the entries matching `filter`, oldest first, page by page, at most `limit` of them.
/// Returns whether more entries match than were handed over.
async fn search(
    app: &App,
    filter: &AuditFilter,
    limit: u64,
    mut each: impl FnMut(&AuditEntry),
) -> Result<bool> {
    let mut f = filter.clone();
    f.after_id = None;
    let mut given = 0u64;
    loop {
        let want = (limit - given).min(PAGE);
        if want == 0 {
            // At the limit: one more entry tells whether the search stopped short.
            f.limit = Some(1);
            return Ok(!app.store.audit_search(&f).await?.is_empty());
        }
        f.limit = Some(u32::try_from(want).unwrap_or(u32::MAX));
        let page = app.store.audit_search(&f).await?;
        for e in &page {
            each(e);
        }
        given += page.len() as u64;
        match page.last() {
            Some(last) if page.len() as u64 == want => f.after_id = Some(last.id),
            _ => return Ok(false),
        }
    }
}

/// The key column: a record's key, or for a page's summary of unchanged records how many it covers.
fn key_column(e: &AuditEntry) -> String {
    if let Some(k) = &e.record_key {
        return k.clone();
    }
    e.detail
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|d| d.get("count").and_then(serde_json::Value::as_u64))
        .map(|n| format!("({n} records)"))
        .unwrap_or_default()
}

fn say_if_more(more: bool, limit: u64) {
    if more {
        eprintln!(
            "stopped at --limit {limit}: more entries match; raise --limit, or narrow the search with --run, --stream, --key, --from or --to"
        );
    }
}

pub async fn run(app: &App, cmd: AuditCommand) -> Result<u8> {
    match cmd {
        AuditCommand::Search {
            run,
            stream,
            key,
            from,
            to,
            limit,
            format,
            connection,
        } => {
            let configured = app.config.connection(connection.connection.as_deref()).ok();
            let connection = match connection.connection {
                Some(c) => Some(c),
                None => configured.map(|c| c.name.clone()),
            };
            let stream =
                stream.map(|s| stream_object(configured.map(|c| c.streams.as_slice()), &s));
            let filter = AuditFilter {
                connection,
                run: run.map(RunId),
                stream,
                record_key: key,
                from: time(&from, "from")?,
                to: time(&to, "to")?,
                ..Default::default()
            };
            let limit = limit.unwrap_or(if format == AuditFormat::Table {
                PAGE
            } else {
                u64::MAX
            });
            match format {
                AuditFormat::Table => {
                    crate::outln!(
                        "{:>7} {:>6} {:<12} {:<10} {:<11} {:<20} {:<10} batch / error",
                        "seq",
                        "run",
                        "stream",
                        "key",
                        "action",
                        "time (UTC)",
                        "outcome"
                    );
                    let more = search(app, &filter, limit, |e| {
                        crate::outln!(
                            "{:>7} {:>6} {:<12} {:<10} {:<11} {:<20} {:<10} {}",
                            e.seq,
                            e.run.map(|r| r.to_string()).unwrap_or_default(),
                            e.stream.as_deref().unwrap_or(""),
                            key_column(e),
                            e.action,
                            e.created_at.format("%Y-%m-%d %H:%M:%S"),
                            e.outcome.as_deref().unwrap_or(""),
                            e.error.as_deref().or(e.batch_id.as_deref()).unwrap_or("")
                        );
                    })
                    .await?;
                    say_if_more(more, limit);
                }
                AuditFormat::Csv | AuditFormat::Jsonl => {
                    // Exports are streamed page by page; stdout's lock cannot cross await points, so
                    // each write goes through a Send handle.
                    let mut out = std::io::BufWriter::new(SendStdout);
                    if format == AuditFormat::Csv {
                        crate::out::handled(ml_store::export::write_csv_header(&mut out));
                    }
                    let more = search(app, &filter, limit, |e| {
                        crate::out::handled(if format == AuditFormat::Csv {
                            ml_store::export::write_csv_entry(&mut out, e)
                        } else {
                            ml_store::export::write_json_line(&mut out, e)
                        })
                    })
                    .await?;
                    crate::out::handled(std::io::Write::flush(&mut out));
                    say_if_more(more, limit);
                }
            }
            Ok(exit::OK)
        }
        AuditCommand::Verify(c) => {
            let name = app
                .config
                .connection(c.connection.as_deref())
                .map_err(anyhow::Error::msg)?
                .name
                .clone();
            let r = app.store.audit_verify(&name).await?;
            if r.ok {
                crate::outln!(
                    "audit trail of {name}: {} entries verified{}",
                    r.entries_checked,
                    r.anchor_seq
                        .map(|a| format!(" from the pruning anchor at seq {a}"))
                        .unwrap_or_default()
                );
                Ok(exit::OK)
            } else {
                let (seq, why) = r.first_bad.unwrap_or((0, "unknown".into()));
                crate::outln!(
                    "audit trail of {name}: BROKEN at seq {seq}: {why} ({} entries checked before it)",
                    r.entries_checked
                );
                Ok(exit::DIFFERENCE)
            }
        }
        AuditCommand::Prune { before, connection } => {
            let name = app
                .config
                .connection(connection.connection.as_deref())
                .map_err(anyhow::Error::msg)?
                .name
                .clone();
            let before = time(&Some(before), "before")?.expect("given");
            let r = app.store.audit_prune(&name, before).await?;
            crate::outln!(
                "pruned {} entries of {name}; the chain now starts from the anchor at seq {}",
                r.deleted,
                r.anchor_seq
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into())
            );
            Ok(exit::OK)
        }
    }
}
