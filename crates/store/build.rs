//! `sqlx::migrate!` embeds the migration files at compile time, but cargo only rebuilds this crate
//! when one of its sources changes: without this, a new or edited migration is silently left out
//! of the build (sqlx documents the same build script).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
