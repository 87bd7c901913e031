//! The bench routes on axum + tower-sessions 0.14 with tower-sessions-redis-store (fred),
//! signed cookies. `REDIS_URL` (default redis://127.0.0.1:6379); the store keys sessions by
//! bare id, without a prefix.

use tower_sessions_014::{cookie::Key, SessionManagerLayer};
use tower_sessions_redis_store::{
    fred::prelude::{ClientLike, Config, Pool},
    RedisStore,
};

#[tokio::main]
async fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let config = Config::from_url(&url).expect("REDIS_URL");
    let pool = Pool::new(config, None, None, None, 6).expect("redis pool");
    pool.init().await.expect("connect to redis");
    let layer = SessionManagerLayer::new(RedisStore::new(pool))
        .with_secure(false)
        .with_signed(Key::from(express_session_bench_peers::KEY));
    let app = express_session_bench_peers::tower_sessions_routes!(tower_sessions_014).layer(layer);
    express_session_bench_peers::serve(app).await;
}
