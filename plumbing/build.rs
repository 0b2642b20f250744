//! Rebuilds plumbing when a migration is added: `sqlx::migrate!` embeds the files it found,
//! and cargo only notices changes to files it already knew.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=../projections/migrations");
}
