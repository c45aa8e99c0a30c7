//! `sync --dry-run`: the table of what a run would read and push.

use ml_connector::config::Mode;
use ml_connector::destination::powerbi::budget::thousands;
use ml_connector::pipeline::preview::DryRun;

use crate::outln;

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "?".into(), thousands)
}

pub fn print(dry: &DryRun) {
    outln!(
        "dry run of connection {}: nothing staged, pushed or recorded; cursors unchanged",
        dry.connection
    );
    outln!();
    outln!(
        "{:<18} {:<18} {:<8} {:<20} {:>9} {:>9} {:>9} {:>10}  DELIVERY",
        "STREAM",
        "TABLE",
        "MODE",
        "READ FROM",
        "TO READ",
        "CHANGED",
        "NEVER-MOD",
        "PUSH ROWS"
    );
    let mut notes = Vec::new();
    let mut total = 0u64;
    for read in &dry.streams {
        let s = &read.stream;
        let table = dry
            .delivery
            .as_ref()
            .and_then(|d| d.tables.iter().find(|t| t.object == s.object));
        let (push, delivery) = match table {
            Some(t) => {
                total += t.rows;
                let mut what = t.why.clone();
                if let Some(r) = t.rebuild_rows {
                    what.push_str(&format!(" (table: {} rows)", thousands(r)));
                }
                if t.budget != "-" {
                    what.push_str(&format!("; budget: {}", t.budget));
                }
                (thousands(t.rows), what)
            }
            None => ("?".into(), "the destination cannot say".into()),
        };
        outln!(
            "{:<18} {:<18} {:<8} {:<20} {:>9} {:>9} {:>9} {:>10}  {}",
            s.object,
            s.table,
            match s.mode {
                Mode::Replace => "replace",
                Mode::Append => "append",
            },
            read.since.map_or_else(
                || "everything".into(),
                |t| t.format("%Y-%m-%d %H:%M:%S").to_string()
            ),
            count(read.to_read()),
            count(read.changed),
            count(read.never_modified),
            push,
            delivery
        );
        if let Some(note) = &read.note {
            notes.push(format!("{}: {note}", s.object));
        }
    }
    outln!();
    if let Some(d) = &dry.delivery {
        match &d.budget {
            Some(b) => outln!(
                "{}: {} of the hour's {} rows used in the last hour ({} POSTs), {} left; this run would push at most {}",
                d.target,
                thousands(b.rows_used),
                thousands(b.rows_per_hour),
                b.posts_used,
                thousands(b.rows_left),
                thousands(total)
            ),
            None => outln!(
                "{}: this run would push at most {}",
                d.target,
                thousands(total)
            ),
        }
        let postponed: Vec<&str> = d
            .tables
            .iter()
            .filter(|t| t.postponed)
            .map(|t| t.table.as_str())
            .collect();
        if !postponed.is_empty() {
            outln!(
                "not within this hour's budget: {} (a replace table keeps its current rows until its rebuild fits)",
                postponed.join(", ")
            );
        }
    }
    for n in notes {
        outln!("{n}");
    }
    outln!(
        "TO READ counts the records Intacct would return (those never modified are read again every run); deletes are found during the run and not counted here."
    );
    outln!(
        "A replace table pushes all its rows again whenever anything in it changed (a push dataset cannot update or delete by key); `mode = \"append\"` or a less frequent schedule costs less (README: *A table is not emptied by a rebuild that cannot finish*)."
    );
}
