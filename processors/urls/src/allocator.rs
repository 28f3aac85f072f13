//! Leases blocks of counter values and hands out codes from them.
//!
//! A block number comes from a Redis counter (`INCR <prefix>:code-block`, fast and shared by
//! every ingress) and is then claimed in the store with an atomic `put_if_absent`, which is
//! what makes it unique for good: if Redis loses the counter (a restart without persistence),
//! the claim fails for blocks already leased and the counter is moved past them. Each block
//! holds `block_size` counter values, turned into codes by the [`CodeScrambler`].

use std::ops::Range;
use std::sync::Arc;

use sixfold_runtime::redis_conn::RedisConn;
use sixfold_store::{Store, StoreError};
use tokio::sync::Mutex;

use crate::code::{CODE_SPACE, CodeScrambler};

/// Why no code could be allocated.
#[derive(Debug, thiserror::Error)]
pub enum AllocError {
    /// Redis is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The store is unreachable.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Every code has been issued.
    #[error("the code space is exhausted")]
    Exhausted,
}

/// Moves the counter to at least ARGV[1] (never backwards).
const RAISE_COUNTER: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
";

/// Hands out codes from leased blocks; shared by all requests of a process.
pub struct CodeAllocator {
    scrambler: CodeScrambler,
    redis: RedisConn,
    store: Arc<dyn Store>,
    counter_key: String,
    blocks_namespace: String,
    block_size: u64,
    current: Mutex<Range<u64>>,
}

impl CodeAllocator {
    /// An allocator keeping its counter at `<prefix>:code-block` and its leases in the store
    /// namespace `<prefix>.blocks`.
    pub fn new(
        scrambler: CodeScrambler,
        redis: RedisConn,
        store: Arc<dyn Store>,
        prefix: &str,
        block_size: u64,
    ) -> Self {
        Self {
            scrambler,
            redis,
            store,
            counter_key: format!("{prefix}:code-block"),
            blocks_namespace: format!("{prefix}.blocks"),
            block_size: block_size.max(1),
            current: Mutex::new(0..0),
        }
    }

    /// The next unused code.
    pub async fn next(&self) -> Result<String, AllocError> {
        let mut current = self.current.lock().await;
        let n = match current.next() {
            Some(n) => n,
            None => {
                *current = self.lease().await?;
                current.next().ok_or(AllocError::Exhausted)?
            }
        };
        self.scrambler.code(n).ok_or(AllocError::Exhausted)
    }

    async fn lease(&self) -> Result<Range<u64>, AllocError> {
        let mut redis = self.redis.clone();
        loop {
            let block: u64 = redis::cmd("INCR")
                .arg(&self.counter_key)
                .query_async(&mut redis)
                .await?;
            let start = block
                .checked_mul(self.block_size)
                .ok_or(AllocError::Exhausted)?;
            if start >= CODE_SPACE {
                return Err(AllocError::Exhausted);
            }
            let claimed = self
                .store
                .kv()
                .put_if_absent(&self.blocks_namespace, &format!("{block:014}"), Vec::new())
                .await?;
            if claimed {
                tracing::debug!(block, "leased code block");
                return Ok(start..(start + self.block_size).min(CODE_SPACE));
            }
            // The counter is behind the store (Redis lost it): skip past every leased block.
            let leased = self.store.kv().count(&self.blocks_namespace).await?;
            tracing::warn!(
                block,
                leased,
                "code counter behind the store; moving it forward"
            );
            redis::Script::new(RAISE_COUNTER)
                .key(&self.counter_key)
                .arg(leased.max(block))
                .invoke_async::<i64>(&mut redis)
                .await?;
        }
    }
}
