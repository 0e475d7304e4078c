//! `sqlx::migrate!` embeds the migrations at compile time: rebuild when one
//! is added or changed (sqlx's advice), or a new migration would be missed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
