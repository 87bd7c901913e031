//! The bench routes on axum + tower-sessions (latest) with its `MemoryStore`, signed cookies.

use tower_sessions::{cookie::Key, MemoryStore, SessionManagerLayer};

#[tokio::main]
async fn main() {
    let layer = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(false)
        .with_signed(Key::from(express_session_bench_peers::KEY));
    let app = express_session_bench_peers::tower_sessions_routes!(tower_sessions).layer(layer);
    express_session_bench_peers::serve(app).await;
}
