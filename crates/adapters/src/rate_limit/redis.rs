//! The Redis rate limiter: sliding-window logs shared by every instance.

use std::{
    fmt,
    sync::{
        LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use phonegate_domain::{
    StoreError,
    ports::RandomSource as _,
    rate_limit::{BatchDecision, RateDecision, RateKey, RateLimiter, RateRule},
    time::Timestamp,
};
use redis::{
    Client, RedisError, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{retry_after, window_millis};

/// How long a call (and connecting at start) may take unless configured
/// otherwise: Redis answers in well under a millisecond, so anything near
/// this means it is unreachable, and the request should not wait longer.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// One decision, atomically: Redis runs a script without interleaving any
/// other command, so of N concurrent calls for a key at limit L, from any
/// number of instances, exactly min(N, L) record an event.
///
/// KEYS[1] is the key's sorted set: one member per allowed event, scored
/// with its time in ms. ARGV: now (ms), window (ms), limit, and a member
/// unique across instances and calls. It answers `{1, 0}` when the event was
/// recorded and `{0, retry_after_ms}` when it was not.
///
/// Events at or before `now - window` have left the window `(now - window,
/// now]` and are dropped first. The set expires `window` after its newest
/// event (Redis's own clock, relative), so an idle key leaves no trace.
/// When refused, another event fits once the event at index `count - limit`
/// has left the window (the oldest, unless the rule's limit was lowered);
/// under a limit of 0 nothing ever fits, and the answer is the window.
const ACQUIRE_SCRIPT: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, math.max(window, 1))
  return {1, 0}
end
if limit <= 0 then
  return {0, window}
end
local freeing = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
return {0, tonumber(freeing[2]) + window - now}
";

/// `acquire_all`: the same decision for every key of a batch, all or
/// nothing, in one script (so atomically). KEYS are the batch's sorted
/// sets; ARGV: now (ms), a member unique across instances and calls, then
/// per key its window (ms) and limit. Every key is pruned and counted
/// first; if one refuses, nothing is added anywhere and the answer is
/// `{0, index, retry_after_ms}` with the 0-based index of the first key that
/// refuses; otherwise the member is added to every set (each expiring a
/// window after it) and the answer is `{1, 0, 0}`.
const ACQUIRE_ALL_SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local member = ARGV[2]
for i = 1, #KEYS do
  local key = KEYS[i]
  local window = tonumber(ARGV[2 * i + 1])
  local limit = tonumber(ARGV[2 * i + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    if limit <= 0 then
      return {0, i - 1, window}
    end
    local freeing = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    return {0, i - 1, tonumber(freeing[2]) + window - now}
  end
end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('PEXPIRE', KEYS[i], math.max(tonumber(ARGV[2 * i + 1]), 1))
end
return {1, 0, 0}
";

/// `peek`: what `ACQUIRE_SCRIPT` would answer, read-only. KEYS[1] and ARGV
/// (now, window, limit) as there; it answers `{1, 0}` when another event
/// fits and `{0, retry_after_ms}` when not, counting only the events within
/// `(now - window, now]` and removing nothing.
const PEEK_SCRIPT: &str = r"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local horizon = '(' .. (now - window)
local count = redis.call('ZCOUNT', key, horizon, '+inf')
if count < limit then
  return {1, 0}
end
if limit <= 0 then
  return {0, window}
end
local freeing = redis.call('ZRANGEBYSCORE', key, horizon, '+inf', 'WITHSCORES', 'LIMIT', count - limit, 1)
return {0, tonumber(freeing[2]) + window - now}
";

/// The peek script, hashed once.
static PEEK: LazyLock<Script> = LazyLock::new(|| Script::new(PEEK_SCRIPT));

/// Counts events per key in sliding windows in Redis, shared by every
/// instance that connects to the same server with the same key prefix.
///
/// Each key is a sorted set named `key_prefix + key` holding one member per
/// allowed event (scored with its time in ms), changed only by one Lua
/// script per call (see `ACQUIRE_SCRIPT`), which makes every decision
/// atomic across instances. Sets expire a window after their newest event,
/// so Redis holds only keys in use. Keys are stored as the domain gives them:
/// the domain puts phone numbers and emails in them only as keyed hashes,
/// but they hold client IP addresses, so the Redis server should still be
/// as private as the database.
///
/// Time is the `now` each call is given, from the calling instance's clock:
/// instances sharing a Redis must keep their clocks synchronised (NTP), or
/// one whose clock runs behind counts events that others already see as
/// gone, and the other way round.
///
/// Every call, and connecting at start, must complete within a timeout
/// ([`DEFAULT_REDIS_TIMEOUT`] unless configured otherwise); any failure is a
/// [`StoreError`] whose message holds neither the key nor anything from the
/// URL. A lost connection is re-established in the background while calls
/// fail fast. `rediss://` URLs use TLS (rustls with ring, checked against the
/// webpki roots); unverified TLS (`#insecure`) is not supported.
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    script: Script,
    batch_script: Script,
    key_prefix: String,
    timeout: Duration,
    /// Where the server is (`host:port` or a socket path), for `Debug`:
    /// never the URL, which may hold a password.
    endpoint: String,
    /// A random id for this limiter, so that members added by different
    /// instances in the same millisecond never collide (a collision would
    /// overwrite an event instead of adding one).
    instance: String,
    sequence: AtomicU64,
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("endpoint", &self.endpoint)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisRateLimiter {
    /// Checks that `url` is a Redis URL this client can use, without
    /// connecting (for `phonegate config check`). The error never quotes
    /// the URL, which may hold a password.
    pub fn check_url(url: &str) -> Result<(), StoreError> {
        Client::open(url)
            .map(drop)
            .map_err(|error| store_error("check_url", "the Redis URL is invalid", &error))
    }

    /// Connects to the Redis at `url` (`redis://[user:password@]host:port/db`,
    /// `rediss://…` for TLS, or `redis+unix:///path`), with keys named
    /// `key_prefix + key` and calls bounded by [`DEFAULT_REDIS_TIMEOUT`].
    ///
    /// It fails, within that timeout, when the URL is invalid or the server
    /// does not answer, refuses the credentials or refuses scripts, so an
    /// instance can refuse to start without its rate limits.
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, StoreError> {
        Self::connect_with_timeout(url, key_prefix, DEFAULT_REDIS_TIMEOUT).await
    }

    /// [`connect`](Self::connect), with `timeout` bounding each call and the
    /// connection itself.
    pub async fn connect_with_timeout(url: &str, key_prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|error| store_error("connect", "the Redis URL is invalid", &error))?;
        let endpoint = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Reconnecting happens in the background; a few quick tries are
            // enough, as the next failed call starts another round.
            .set_number_of_retries(2)
            .set_max_delay(timeout);
        let script = Script::new(ACQUIRE_SCRIPT);
        let batch_script = Script::new(ACQUIRE_ALL_SCRIPT);
        let connecting = async {
            let mut connection = ConnectionManager::new_with_config(client, config)
                .await
                .map_err(|error| store_error("connect", "connecting to Redis", &error))?;
            // Loading the script now proves that the server takes commands
            // and scripts from us (credentials, ACLs) before the first request.
            for script in [&script, &batch_script] {
                script
                    .prepare_invoke()
                    .load_async(&mut connection)
                    .await
                    .map_err(|error| store_error("connect", "loading the rate-limit scripts into Redis", &error))?;
            }
            Ok::<_, StoreError>(connection)
        };
        let connection = tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| StoreError::new("connect", format!("connecting to Redis timed out after {timeout:?}")))??;
        Ok(Self {
            connection,
            script,
            batch_script,
            key_prefix: key_prefix.to_owned(),
            timeout,
            endpoint,
            instance: instance_id(),
            sequence: AtomicU64::new(0),
        })
    }

    /// A member no other call of any instance uses.
    fn unique_member(&self) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("{}-{sequence}", self.instance)
    }

    /// Awaits one Redis call within the limiter's timeout, so an outage
    /// answers a `StoreError` in bounded time instead of stalling a request.
    async fn bounded<T>(
        &self,
        op: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                StoreError::new(
                    op,
                    format!("the Redis rate limiter did not answer within {:?}", self.timeout),
                )
            })?
            .map_err(|error| store_error(op, "the Redis rate limiter failed", &error))
    }
}

/// 128 random bits in hex: unique among instances in practice.
fn instance_id() -> String {
    let mut bytes = [0u8; 16];
    crate::random::OsRandom.fill(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A Redis failure as a [`StoreError`]. Only the error's category, the
/// server's error code and the kind of I/O failure are kept: the error's
/// detail text may quote the URL or a command's arguments (the key).
fn store_error(op: &'static str, doing: &str, error: &RedisError) -> StoreError {
    let mut message = format!("{doing}: {}", error.category());
    if let Some(code) = error.code() {
        message.push_str(&format!(" ({code})"));
    }
    if error.is_timeout() {
        message.push_str(", timed out");
    } else if error.is_connection_refusal() {
        message.push_str(", connection refused");
    } else if error.is_connection_dropped() {
        message.push_str(", connection lost");
    }
    StoreError::new(op, message)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}{key}", self.key_prefix));
        invocation
            .arg(now.unix_millis())
            .arg(window_millis(rule.window))
            .arg(rule.limit)
            .arg(self.unique_member());
        let (allowed, retry_millis): (i64, i64) = self
            .bounded("acquire", invocation.invoke_async(&mut connection))
            .await?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after: retry_after(retry_millis),
            }
        })
    }

    async fn acquire_all(&self, batch: &[RateKey], now: Timestamp) -> Result<BatchDecision, StoreError> {
        if batch.is_empty() {
            return Ok(BatchDecision::Allowed);
        }
        let mut connection = self.connection.clone();
        let mut invocation = self.batch_script.prepare_invoke();
        for item in batch {
            invocation.key(format!("{}{}", self.key_prefix, item.key));
        }
        invocation.arg(now.unix_millis()).arg(self.unique_member());
        for item in batch {
            invocation.arg(window_millis(item.rule.window)).arg(item.rule.limit);
        }
        let (allowed, index, retry_millis): (i64, i64, i64) = self
            .bounded("acquire_all", invocation.invoke_async(&mut connection))
            .await?;
        if allowed == 1 {
            return Ok(BatchDecision::Allowed);
        }
        let index = usize::try_from(index)
            .ok()
            .filter(|&index| index < batch.len())
            .ok_or_else(|| {
                StoreError::new(
                    "acquire_all",
                    "the Redis rate limiter answered an index outside the batch",
                )
            })?;
        Ok(BatchDecision::Limited {
            index,
            retry_after: retry_after(retry_millis),
        })
    }

    /// One read-only script (`PEEK_SCRIPT`), so the count and the retry
    /// time come from one consistent view of the key.
    async fn peek(&self, key: &str, rule: RateRule, now: Timestamp) -> Result<RateDecision, StoreError> {
        let mut connection = self.connection.clone();
        let mut invocation = PEEK.key(format!("{}{key}", self.key_prefix));
        invocation
            .arg(now.unix_millis())
            .arg(window_millis(rule.window))
            .arg(rule.limit);
        let (allowed, retry_millis): (i64, i64) =
            self.bounded("peek", invocation.invoke_async(&mut connection)).await?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after: retry_after(retry_millis),
            }
        })
    }

    /// `DEL`: one command, atomic with respect to the scripts.
    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let mut delete = redis::cmd("DEL");
        delete.arg(format!("{}{key}", self.key_prefix));
        self.bounded("reset", delete.query_async::<i64>(&mut connection))
            .await?;
        Ok(())
    }
}
