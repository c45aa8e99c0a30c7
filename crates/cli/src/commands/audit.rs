//! `audit search|verify|prune`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use ml_store::{AuditFilter, ExportFormat, RunId};

use crate::args::{AuditCommand, AuditFormat};
use crate::exit;
use ml_connector::app::App;

struct SendStdout;

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
            let connection = match connection.connection {
                Some(c) => Some(c),
                None => app.config.connection(None).ok().map(|c| c.name.clone()),
            };
            let filter = AuditFilter {
                connection,
                run: run.map(RunId),
                stream: stream.map(|s| s.to_ascii_uppercase()),
                record_key: key,
                from: time(&from, "from")?,
                to: time(&to, "to")?,
                limit: Some(limit),
                ..Default::default()
            };
            match format {
                AuditFormat::Table => {
                    let entries = app.store.audit_search(&filter).await?;
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
                    for e in entries {
                        crate::outln!(
                            "{:>7} {:>6} {:<12} {:<10} {:<11} {:<20} {:<10} {}",
                            e.seq,
                            e.run.map(|r| r.to_string()).unwrap_or_default(),
                            e.stream.as_deref().unwrap_or(""),
                            e.record_key.as_deref().unwrap_or(""),
                            e.action,
                            e.created_at.format("%Y-%m-%d %H:%M:%S"),
                            e.outcome.as_deref().unwrap_or(""),
                            e.error.as_deref().or(e.batch_id.as_deref()).unwrap_or("")
                        );
                    }
                }
                AuditFormat::Csv | AuditFormat::Jsonl => {
                    let fmt = if format == AuditFormat::Csv {
                        ExportFormat::Csv
                    } else {
                        ExportFormat::JsonLines
                    };
                    // Exports are streamed page by page; stdout's lock cannot cross await points, so
                    // each write goes through a Send handle.
                    let mut out = std::io::BufWriter::new(SendStdout);
                    ml_store::export_audit(app.store.as_ref(), &filter, fmt, &mut out).await?;
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
