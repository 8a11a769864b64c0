//! Password hashing with argon2id, off the async runtime.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicUsize, Ordering},
    mpsc,
};

use std::cell::RefCell;

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{Output, ParamsString, Salt, SaltString},
};
use async_trait::async_trait;
use phonegate_domain::{
    StoreError,
    account::{Password, PasswordHash},
    ports::{HashError, PasswordHasher, RandomSource},
};

/// Hashes that may wait per hashing thread by default. A hash takes tens
/// of milliseconds per thread (argon2id at 19 MiB, 2 passes), so 32
/// waiting per thread is under about a second of queue whatever the
/// number of cores: enough to absorb a real burst of sign-ins, and a flood
/// beyond it is refused with 503 at once instead of making everyone wait.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 32;

/// argon2id cost settings (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords with argon2id on a pool of dedicated
/// threads, one per core, that run only when nothing else on the machine
/// wants the CPU (see `run_this_thread_only_when_idle`).
///
/// Why a pool of its own rather than tokio's blocking pool: one thread per
/// core is exactly enough to keep every core hashing during a burst of
/// sign-ins, and it bounds the memory of hashing at one argon2 block set
/// (`memory_kib`) per core without a semaphore. Why a lower priority: a
/// hash is tens of milliseconds of pure CPU, and while the cores are busy
/// hashing, the threads that answer OTP requests and the database must
/// still get the CPU the moment they need it, so sign-in bursts do not
/// raise everyone else's latency. With nothing else to do, the hashing
/// threads still get every core.
#[derive(Clone)]
pub struct Argon2Passwords {
    argon2: Argon2<'static>,
    pool: Arc<HashPool>,
    random: Arc<dyn RandomSource>,
    /// A hash of a random password, checked when there is no real hash so
    /// that an unknown email takes as long as a wrong password.
    dummy: Arc<String>,
    /// How many hashes may wait for a thread before more are refused.
    queue_limit: usize,
}

impl std::fmt::Debug for Argon2Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Passwords")
            .field("params", self.argon2.params())
            .finish_non_exhaustive()
    }
}

impl Argon2Passwords {
    /// Builds the hasher with one hashing thread per core (computing the
    /// dummy hash once, which takes as long as one real hash).
    pub fn new(settings: Argon2Settings, random: Arc<dyn RandomSource>) -> Result<Self, String> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self::with_threads(settings, random, cores)
    }

    /// Builds the hasher with `threads` hashing threads.
    pub fn with_threads(
        settings: Argon2Settings,
        random: Arc<dyn RandomSource>,
        threads: usize,
    ) -> Result<Self, String> {
        let argon2 = argon2_for(settings)?;
        let mut password = [0u8; 32];
        random.fill(&mut password);
        let dummy = hash_with(&argon2, random.as_ref(), &password)?;
        let threads = threads.max(1);
        let pool = HashPool::start(threads).map_err(|error| format!("cannot start hashing threads: {error}"))?;
        Ok(Self {
            argon2,
            pool: Arc::new(pool),
            random,
            dummy: Arc::new(dummy),
            queue_limit: threads * DEFAULT_QUEUE_PER_THREAD,
        })
    }

    /// Lets at most `per_thread` hashes per hashing thread wait; beyond
    /// that, hashing answers [`HashError::Busy`] at once.
    #[must_use]
    pub fn with_queue_per_thread(mut self, per_thread: usize) -> Self {
        self.queue_limit = self.pool.threads * per_thread.max(1);
        self
    }
}

/// The argon2id hasher for `settings`.
pub fn argon2_for(settings: Argon2Settings) -> Result<Argon2<'static>, String> {
    let params = Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None)
        .map_err(|error| format!("invalid argon2 settings: {error}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Working memory for argon2 (`memory_kib` KiB), kept between hashes.
///
/// Each hashing thread keeps one while hashes are queued, so a hash in a
/// burst neither allocates nor faults in 19 MiB of fresh pages, and frees
/// it when the queue runs dry. The process's memory for hashing is thus at
/// most one block set per thread, and none between bursts.
#[derive(Default)]
pub struct Argon2Memory(Vec<Block>);

impl std::fmt::Debug for Argon2Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Memory").field("blocks", &self.0.len()).finish()
    }
}

impl Argon2Memory {
    /// Frees the blocks; the next hash allocates them again.
    fn release(&mut self) {
        self.0 = Vec::new();
    }

    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

thread_local! {
    /// The memory of the hashing thread this runs on.
    static THREAD_MEMORY: RefCell<Argon2Memory> = RefCell::new(Argon2Memory::default());
}

/// Hashes `password` with a fresh salt into a PHC string, in `memory`.
pub fn hash_with_memory(
    argon2: &Argon2<'_>,
    random: &dyn RandomSource,
    password: &[u8],
    memory: &mut Argon2Memory,
) -> Result<String, String> {
    let mut salt = [0u8; 16];
    random.fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|error| format!("salt: {error}"))?;
    let phc = compute(argon2, password, salt.as_salt(), memory).map_err(|error| format!("argon2: {error}"))?;
    Ok(phc.to_string())
}

/// Hashes `password` with a fresh salt into a PHC string.
pub fn hash_with(argon2: &Argon2<'_>, random: &dyn RandomSource, password: &[u8]) -> Result<String, String> {
    hash_with_memory(argon2, random, password, &mut Argon2Memory::default())
}

/// What `argon2`'s own `PasswordHasher` computes, in caller-provided memory.
fn compute<'a>(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: Salt<'a>,
    memory: &mut Argon2Memory,
) -> argon2::password_hash::Result<argon2::PasswordHash<'a>> {
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let params = argon2.params();
    let output = Output::init_with(params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN), |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, memory.blocks(params.block_count()))?)
    })?;
    Ok(argon2::PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)?,
        salt: Some(salt),
        hash: Some(output),
    })
}

fn verify_with(password: &[u8], phc: &str, memory: &mut Argon2Memory) -> bool {
    // The stored hash names its own parameters, so hashes made with older
    // settings keep verifying after the settings change.
    let Ok(hash) = argon2::PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let algorithm = Algorithm::try_from(hash.algorithm);
    let version = hash.version.map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, Params::try_from(&hash)) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = memory.blocks(argon2.params().block_count());
    // `Output`'s equality is constant-time.
    Output::init_with(expected.len(), |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut *blocks)?)
    })
    .is_ok_and(|computed| computed == expected)
}

type Job = Box<dyn FnOnce() + Send>;

/// Dedicated hashing threads fed from one queue. The threads end when the
/// pool is dropped (the queue's sender goes away).
struct HashPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Jobs sent and not yet taken by a thread.
    queued: Arc<AtomicUsize>,
    threads: usize,
}

impl HashPool {
    fn start(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let queued = Arc::new(AtomicUsize::new(0));
        for index in 0..threads {
            let (queue, queued) = (queue.clone(), queued.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    run_this_thread_only_when_idle();
                    loop {
                        // The lock is held only while waiting for the next
                        // job, never while hashing.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        queued.fetch_sub(1, Ordering::AcqRel);
                        job();
                        // A burst is over: give the working memory back, so
                        // that after a wave of sign-ins the process returns
                        // to its size without them. During a burst it is kept,
                        // and a hash neither allocates nor faults in 19 MiB.
                        if queued.load(Ordering::Acquire) == 0 {
                            THREAD_MEMORY.with_borrow_mut(Argon2Memory::release);
                        }
                    }
                })?;
        }
        Ok(Self {
            jobs: Mutex::new(jobs),
            queued,
            threads,
        })
    }

    /// Runs `work` on a hashing thread and waits for its result, unless
    /// `limit` jobs already wait for a thread: then it answers
    /// [`HashError::Busy`] at once. Work whose caller has gone (a client
    /// that hung up while queued) is skipped.
    async fn run<T: Send + 'static>(
        &self,
        limit: usize,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            if !done.is_closed() {
                let _ = done.send(work());
            }
        });
        // Counted before it is sent, so a thread never sees the queue as
        // empty while this job is on its way; and counted only while there
        // is room, so the queue never grows past `limit`.
        if self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued < limit).then_some(queued + 1)
            })
            .is_err()
        {
            return Err(HashError::Busy);
        }
        let sent = self.jobs.lock().map(|jobs| jobs.send(job).is_ok()).unwrap_or(false);
        if !sent {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(StoreError::new("password_hashing", "password hashing is shut down").into());
        }
        result
            .await
            .map_err(|_| StoreError::new("password_hashing", "password hashing thread failed").into())
    }
}

/// The nice value the hashing threads fall back to where `SCHED_IDLE` is
/// refused (10 leaves them about a tenth of a contended core).
const FALLBACK_NICENESS: i32 = 10;

/// Moves the calling thread to Linux's `SCHED_IDLE` class: it runs only on
/// a core that nothing else in the machine wants, so a burst of sign-ins
/// takes no CPU from the threads that answer OTP requests or from the
/// database, yet still gets every core when they are idle. A nice value
/// alone is not enough: at nice 10 a hashing thread still holds a contended
/// core for about a tenth of the time in slices of several milliseconds,
/// which is what raised the OTP flows' p99 several-fold during sign-ins.
/// Both calls change only the calling thread (Linux applies them per
/// thread for pid 0) and need no privilege; if both fail, hashing simply
/// runs at normal priority.
#[expect(
    unsafe_code,
    reason = "two libc calls; the only pointer is to a local struct that outlives the call"
)]
fn run_this_thread_only_when_idle() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid, initialised sched_param that lives
        // across the call; sched_setscheduler only reads it.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &raw const param) } == 0 {
            return;
        }
    }
    // SAFETY: setpriority takes plain integers and touches no memory of ours.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, FALLBACK_NICENESS) } != 0 {
        tracing::warn!("could not lower the priority of a password hashing thread");
    }
}

#[async_trait]
impl PasswordHasher for Argon2Passwords {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let (argon2, random, password) = (self.argon2.clone(), self.random.clone(), password.clone());
        self.pool
            .run(self.queue_limit, move || {
                THREAD_MEMORY.with_borrow_mut(|memory| {
                    hash_with_memory(&argon2, random.as_ref(), password.expose().as_bytes(), memory)
                })
            })
            .await?
            .map(PasswordHash::new)
            .map_err(|error| StoreError::new("hash_password", error).into())
    }

    async fn verify(&self, password: &Password, hash: Option<PasswordHash>) -> Result<bool, HashError> {
        let password = password.clone();
        let (phc, real) = match hash {
            Some(hash) => (hash.as_str().to_owned(), true),
            None => (self.dummy.as_str().to_owned(), false),
        };
        let matches = self
            .pool
            .run(self.queue_limit, move || {
                THREAD_MEMORY.with_borrow_mut(|memory| verify_with(password.expose().as_bytes(), &phc, memory))
            })
            .await?;
        Ok(real && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::OsRandom;

    fn hasher() -> Argon2Passwords {
        // Cheap parameters: these tests check behaviour, not cost.
        Argon2Passwords::new(
            Argon2Settings {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            Arc::new(OsRandom),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id_with_a_salt() {
        let hasher = hasher();
        let password = Password::new_password("correct horse battery").unwrap();
        let first = hasher.hash(&password).await.unwrap();
        let second = hasher.hash(&password).await.unwrap();
        assert!(first.as_str().starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_ne!(first, second, "every hash has its own salt");
        assert!(hasher.verify(&password, Some(first.clone())).await.unwrap());
        let wrong = Password::presented("wrong").unwrap();
        assert!(!hasher.verify(&wrong, Some(first)).await.unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
        assert!(
            !hasher
                .verify(&password, Some(PasswordHash::new("garbage".into())))
                .await
                .unwrap()
        );
    }

    #[test]
    fn hashes_match_the_argon2_crates_own_in_both_directions() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let argon2 = argon2_for(Argon2Settings {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let mut memory = Argon2Memory::default();
        let ours = hash_with_memory(&argon2, &OsRandom, b"secret", &mut memory).unwrap();
        let parsed = argon2::PasswordHash::new(&ours).unwrap();
        assert!(argon2.verify_password(b"secret", &parsed).is_ok());
        assert!(argon2.verify_password(b"other", &parsed).is_err());
        let theirs = argon2
            .hash_password(b"secret", &SaltString::encode_b64(&[7u8; 16]).unwrap())
            .unwrap()
            .to_string();
        assert!(verify_with(b"secret", &theirs, &mut memory));
        assert!(!verify_with(b"other", &theirs, &mut memory));
        // The same memory serves hashes of another size too.
        let bigger = argon2_for(Argon2Settings {
            memory_kib: 2048,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        let big = hash_with_memory(&bigger, &OsRandom, b"secret", &mut memory).unwrap();
        assert!(verify_with(b"secret", &big, &mut memory));
        assert!(verify_with(b"secret", &ours, &mut memory));
    }

    #[tokio::test]
    async fn hashes_made_with_other_settings_still_verify() {
        let password = Password::new_password("correct horse battery").unwrap();
        let old = hasher().hash(&password).await.unwrap();
        let stronger = Argon2Passwords::new(
            Argon2Settings {
                memory_kib: 2048,
                iterations: 2,
                parallelism: 1,
            },
            Arc::new(OsRandom),
        )
        .unwrap();
        assert!(stronger.verify(&password, Some(old)).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_frees_as_it_drains() {
        let pool = Arc::new(HashPool::start(1).unwrap());
        // The one thread is held by a job until `release` is sent.
        let (started, on_start) = std::sync::mpsc::channel::<()>();
        let (release, on_release) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(1, move || {
                    started.send(()).unwrap();
                    on_release.recv().unwrap();
                    "first"
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || on_start.recv().unwrap())
            .await
            .unwrap();
        // One job may wait for the thread...
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(1, || "second").await }
        });
        while pool.queued.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        // ...and the next is refused without waiting.
        assert!(matches!(pool.run(1, || "third").await, Err(HashError::Busy)));
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), "first");
        assert_eq!(waiting.await.unwrap().unwrap(), "second");
        assert_eq!(pool.run(1, || "fourth").await.unwrap(), "fourth");
    }
}
