//! The benchmark ceiling: a bare axum handler returning a small JSON body,
//! on the same runtime settings as latchkey. `bench/run.sh` starts it.
//!
//!     cargo run --release --example ceiling -- 127.0.0.1:8090

use axum::routing::get;
use axum::{Json, Router};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let app = Router::new().route(
        "/",
        get(|| async { Json(serde_json::json!({"status": "ok"})) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
