//! Who is connected where, in Redis: the gateway registry, presence, and the pub/sub channels
//! deliveries travel on.
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `<ns>:route:{<user>}` | sorted set gateway id → expiry (ms) | gateways holding a socket of the user |
//! | `<ns>:presence:{<user>}` | string, last seen (ms), TTL `presence_ttl` | the user is online |
//! | `<ns>:online` | sorted set user → last heartbeat (ms) | users seen online, for the offline sweep |
//! | channel `<ns>:gw:<gateway id>` | pub/sub | [`Delivery`] items for one gateway |
//!
//! A gateway refreshes its entries every heartbeat; an entry whose expiry has passed is
//! ignored by readers, so a crashed gateway's users count as offline after `presence_ttl` even
//! though nobody removed them (the whole key also expires).

use serde::{Deserialize, Serialize};
use sixfold_runtime::redis_conn::RedisConn;

/// A batch of frames for users on one gateway: what travels on a gateway's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Recipients on the gateway.
    pub users: Vec<String>,
    /// The frame, as JSON text ready for the socket.
    pub frame: String,
    /// For `message` frames: conversation and sequence number, so that a gateway that no
    /// longer holds a recipient's socket can put the message in their inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<(String, u64)>,
}

/// The Redis side of chat.
#[derive(Clone)]
pub struct Directory {
    redis: RedisConn,
    ns: String,
}

impl Directory {
    /// Keys under the prefix `ns`.
    pub fn new(redis: RedisConn, ns: &str) -> Self {
        Self {
            redis,
            ns: ns.to_owned(),
        }
    }

    fn route_key(&self, user: &str) -> String {
        format!("{}:route:{{{user}}}", self.ns)
    }

    fn presence_key(&self, user: &str) -> String {
        format!("{}:presence:{{{user}}}", self.ns)
    }

    fn online_key(&self) -> String {
        format!("{}:online", self.ns)
    }

    /// The pub/sub channel of a gateway.
    pub fn channel(&self, gateway: &str) -> String {
        format!("{}:gw:{gateway}", self.ns)
    }

    /// For each user, the gateways holding a live socket of theirs at `now_ms`.
    pub async fn routes(
        &self,
        users: &[String],
        now_ms: i64,
    ) -> redis::RedisResult<Vec<Vec<String>>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let reads: Vec<redis::Cmd> = users
            .iter()
            .map(|user| {
                let mut read = redis::cmd("ZRANGEBYSCORE");
                read.arg(self.route_key(user)).arg(now_ms).arg("+inf");
                read
            })
            .collect();
        let replies = self.redis.query_each(&reads).await?;
        replies
            .iter()
            .map(|reply| Ok(redis::from_redis_value_ref(reply)?))
            .collect()
    }

    /// Publishes deliveries, one per gateway (in one round trip on a single node).
    pub async fn publish(&self, items: &[(String, Delivery)]) -> redis::RedisResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let publishes: Vec<redis::Cmd> = items
            .iter()
            .map(|(gateway, delivery)| {
                let mut publish = redis::cmd("PUBLISH");
                publish
                    .arg(self.channel(gateway))
                    .arg(serde_json::to_string(delivery).unwrap_or_default());
                publish
            })
            .collect();
        self.redis.query_each(&publishes).await?;
        Ok(())
    }

    /// Registers (or refreshes) `users` on `gateway` until `expires_ms`, and their presence
    /// (`ttl_secs`) at `now_ms`. Returns the users who were not online before (newly online
    /// anywhere), whose contacts should hear about it.
    pub async fn register(
        &self,
        gateway: &str,
        users: &[String],
        now_ms: i64,
        expires_ms: i64,
        ttl_secs: u64,
    ) -> redis::RedisResult<Vec<String>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ttl_ms = expires_ms.saturating_sub(now_ms).max(1);
        // Per user: route, presence, then the online entry, whose reply says whether the user
        // was online before. Each command keeps to one slot. The routes' expiries follow in a
        // second round: on a cluster the commands of one round run side by side, and an
        // expiry set before its key exists would be lost.
        let mut commands = Vec::with_capacity(users.len() * 3);
        let mut expiries = Vec::with_capacity(users.len());
        for user in users {
            let route = self.route_key(user);
            let mut add_route = redis::cmd("ZADD");
            add_route.arg(&route).arg(expires_ms).arg(gateway);
            let mut expire_route = redis::cmd("PEXPIRE");
            expire_route.arg(&route).arg(ttl_ms);
            let mut presence = redis::cmd("SET");
            presence
                .arg(self.presence_key(user))
                .arg(now_ms)
                .arg("EX")
                .arg(ttl_secs.max(1));
            let mut online = redis::cmd("ZADD");
            online.arg(self.online_key()).arg(now_ms).arg(user);
            commands.extend([add_route, presence, online]);
            expiries.push(expire_route);
        }
        let replies = self.redis.query_each(&commands).await?;
        self.redis.query_each(&expiries).await?;
        let mut newly_online = Vec::new();
        for (user, reply) in users.iter().zip(replies.chunks(3)) {
            if redis::from_redis_value_ref::<i64>(&reply[2])? == 1 {
                newly_online.push(user.clone());
            }
        }
        Ok(newly_online)
    }

    /// Removes `user`'s route on `gateway`; returns how many live routes the user still has.
    pub async fn unregister(
        &self,
        gateway: &str,
        user: &str,
        now_ms: i64,
    ) -> redis::RedisResult<u64> {
        let route = self.route_key(user);
        let (_, left): (i64, u64) = redis::pipe()
            .cmd("ZREM")
            .arg(&route)
            .arg(gateway)
            .cmd("ZCOUNT")
            .arg(&route)
            .arg(now_ms)
            .arg("+inf")
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(left)
    }

    /// Marks `user` offline: clears presence and the online entry. True for the one caller
    /// that removed the online entry (so contacts hear about it once).
    pub async fn mark_offline(&self, user: &str) -> redis::RedisResult<bool> {
        let mut clear = redis::cmd("DEL");
        clear.arg(self.presence_key(user));
        let mut leave = redis::cmd("ZREM");
        leave.arg(self.online_key()).arg(user);
        let replies = self.redis.query_each(&[clear, leave]).await?;
        Ok(redis::from_redis_value_ref::<i64>(&replies[1])? == 1)
    }

    /// Up to 1,000 users whose last heartbeat is at or before `cutoff_ms`, with it: candidates
    /// for the offline sweep.
    pub async fn stale_online(&self, cutoff_ms: i64) -> redis::RedisResult<Vec<(String, i64)>> {
        redis::cmd("ZRANGEBYSCORE")
            .arg(self.online_key())
            .arg("-inf")
            .arg(cutoff_ms)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(1000)
            .query_async(&mut self.redis.clone())
            .await
    }

    /// When the user was last seen online (ms), if their presence key is alive.
    pub async fn presence(&self, user: &str) -> redis::RedisResult<Option<i64>> {
        redis::cmd("GET")
            .arg(self.presence_key(user))
            .query_async(&mut self.redis.clone())
            .await
    }
}
