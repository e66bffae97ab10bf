//! Build script: rebuild when migration files change.
// `sqlx::migrate!` embeds the migration files at compile time; rebuild when any of them
// (including the service's 0002_* files) is added or changed.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
