//! Spin's Redis store: the label is ignored (all labels share the database the URL names),
//! counters are `INCRBY` text, `get-many` is refused because Spin's Redis backend sends `KEYS`.

use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use redis::AsyncCommands;

use super::{Backend, Failure};

/// Spin's Redis store at `url`; it connects on first use and reconnects after failures.
pub fn open_redis(url: &str) -> Result<Arc<dyn Backend>> {
    let client = redis::Client::open(url).with_context(|| format!("invalid Redis URL {url}"))?;
    Ok(Arc::new(RedisStore {
        client,
        connection: tokio::sync::OnceCell::new(),
    }))
}

struct RedisStore {
    client: redis::Client,
    connection: tokio::sync::OnceCell<redis::aio::ConnectionManager>,
}

impl RedisStore {
    async fn connection(&self) -> Result<redis::aio::ConnectionManager, Failure> {
        let manager = self
            .connection
            .get_or_try_init(|| self.client.get_connection_manager())
            .await?;
        Ok(manager.clone())
    }
}

#[async_trait]
impl Backend for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        Ok(self.connection().await?.get(key).await?)
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Failure> {
        Ok(self.connection().await?.set(key, value).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), Failure> {
        Ok(self.connection().await?.del(key).await?)
    }

    async fn exists(&self, key: &str) -> Result<bool, Failure> {
        Ok(self.connection().await?.exists(key).await?)
    }

    async fn keys(&self) -> Result<Vec<String>, Failure> {
        Ok(self.connection().await?.keys("*").await?)
    }

    async fn get_many(&self, _: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>, Failure> {
        Err(Failure::Store(
            "get-many is not usable on Spin's Redis store (it sends KEYS, not MGET)".into(),
        ))
    }

    async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), Failure> {
        Ok(self.connection().await?.mset(&entries).await?)
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Failure> {
        Ok(self.connection().await?.del(keys).await?)
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Failure> {
        Ok(self.connection().await?.incr(key, delta).await?)
    }
}
