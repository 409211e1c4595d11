//! Test-only parts shared by the end-to-end suite and the benchmark: strict mocks of the
//! Central PG and the bot, a free loopback port, a private `redis-server` and a small HTTP
//! client. Nothing here ships; the runtime is `host/`.

mod http;
pub mod mocks;
mod payloads;
mod redis_server;
pub mod tls;

pub use http::{Http, Reply};
pub use payloads::{bearer, failed_body, paid_body, sign};
pub use redis_server::RedisServer;

/// A free loopback port (bound, released, then used by the caller).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
