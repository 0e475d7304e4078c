//! The SQLite database holds the signing key and every password hash: its
//! files are readable by their owner only, and an existing database that
//! others can read is reported at start-up.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{ServerProcess, TestServer};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_database_and_its_wal_and_shm_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("modes.db");
    let url = format!("sqlite://{}", db.display());
    let s = TestServer::start_on(tempfile::tempdir().unwrap(), url, |_| {}).await;
    s.new_user().await;
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("modes.db{suffix}"));
        assert!(file.exists(), "{} exists", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn an_existing_database_readable_by_others_is_reported_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("open.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("server.log");
    let url = format!("sqlite://{}", db.display());
    let server = ServerProcess::start_logging_to(&[("LATCHKEY_DATABASE_URL", &url)], &log).await;
    server.terminate();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("readable by other users"), "{text}");
    assert!(text.contains("open.db"), "{text}");
}
