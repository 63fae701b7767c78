//! Every bound the server puts on what a client can make it hold: time, memory,
//! connections, CPU. The values live here, once; `README.md` lists them.
//! [`Limits`] carries them into a server so tests can run one with short timeouts.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Limit for every body but a batch's: a report is a few hundred bytes.
pub const BODY_LIMIT: usize = 64 * 1024;
/// A full batch of 1,000 reports with every extension field fits with room to spare.
/// The item count ([`clinic_protocol::MAX_BATCH_REPORTS`]) is enforced while parsing,
/// so a body of a million tiny items within this size is refused at item 1,001.
pub const BATCH_BODY_LIMIT: usize = 2 * 1024 * 1024;

/// hyper's read buffer per connection, which bounds a request's head: the app's
/// headers are well under 2 KiB; hyper's default (~400 KiB) times the connection
/// cap would let slow headers alone hold 800 MiB. A larger head gets 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// From the moment a connection is ready for a request (just opened, or after the
/// previous answer) until that request's headers are complete.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's whole body must arrive within this, however slowly it trickles.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection with no request being handled and no byte moving either way for
/// this long is closed: idle keep-alive connections, silent new ones, and clients
/// that stopped reading their answer.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Open connections at most; beyond it a new connection is closed at once (and
/// logged, at most every [`LIMIT_LOG_INTERVAL`]). Lowered at start to the process's
/// file-descriptor limit minus [`RESERVED_FDS`], so the cap bites before `accept` fails.
pub const MAX_CONNECTIONS: usize = 2_048;
/// File descriptors kept for the database, its WAL, readers and logs.
pub const RESERVED_FDS: u64 = 128;
/// argon2id PIN hashes computed at once. Each takes 19 MiB (m=19456) and a core for
/// tens of milliseconds, so more would only add memory, not speed, on the small
/// machines a clinic runs this on. Further PIN PUTs wait their turn.
pub const MAX_CONCURRENT_PIN_HASHES: usize = 2;
/// Failed authentications an address may make at once, then per minute. A device
/// with a revoked token retries at most every few minutes; a scanner is slowed to one a second.
pub const FAILED_AUTH_BURST: u32 = 20;
pub const FAILED_AUTH_PER_MINUTE: u32 = 60;
/// Addresses remembered by the failed-authentication limiter before the ones back
/// at full allowance are forgotten (a few MB at most).
pub const MAX_TRACKED_ADDRESSES: usize = 100_000;
/// How long the report writer stays down after it died, before it is restarted.
pub const WRITER_RESTART_DELAY: Duration = Duration::from_secs(1);
/// A limit that bites is logged at most this often (with the count in between).
pub const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// After a failed `accept` (out of file descriptors, say), wait this long before the next.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// In-flight requests get this long to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Authenticated `GET /v1/changes` long polls held at once (each is an open
/// connection with a waiting request). Beyond it the poll is answered 503 with
/// [`CHANGES_FULL_RETRY_AFTER`] at once, and the device keeps its ticker. Also held
/// to three quarters of the connection cap ([`Limits::change_waiter_cap`]), so
/// pushes and pulls always find a connection. One replica held 10,000 on the
/// development machine (`benches/waiters.rs`, README).
pub const MAX_CHANGE_WAITERS: usize = 1_536;
/// What a long poll refused for the waiter cap asks the device to wait.
pub const CHANGES_FULL_RETRY_AFTER: Duration = Duration::from_secs(30);

/// `GET /v1/snapshot` bodies written at once (each holds a database read
/// transaction and a blocking thread while its device reads). Beyond it the
/// request is answered 503 with [`SNAPSHOT_FULL_RETRY_AFTER`]; a device keeps
/// pulling page by page meanwhile only if it has already bootstrapped.
pub const MAX_SNAPSHOTS: usize = 4;
/// What a snapshot refused for [`MAX_SNAPSHOTS`] asks the device to wait.
pub const SNAPSHOT_FULL_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Longest a snapshot body may take to write; past it the body breaks off
/// without its `end` line. A 1,000,000-patient clinic takes well under a minute
/// on loopback (README); this leaves a slow clinic link room.
pub const SNAPSHOT_MAX_DURATION: Duration = Duration::from_secs(15 * 60);
/// A snapshot's lines go to the response in chunks of about this many bytes.
pub const SNAPSHOT_CHUNK_BYTES: usize = 64 * 1024;
/// Chunks queued between the store and the connection: the memory one snapshot
/// holds here is about this times [`SNAPSHOT_CHUNK_BYTES`].
pub const SNAPSHOT_CHUNKS_IN_FLIGHT: usize = 4;

/// A token's last-seen time and address are written at most this often per token
/// (and replica): a device's requests never each cost a write.
pub const TOKEN_TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The limits one server runs with; [`Limits::default`] is the constants above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_concurrent_pin_hashes: usize,
    pub failed_auth_burst: u32,
    pub failed_auth_per_minute: u32,
    pub writer_restart_delay: Duration,
    pub max_change_waiters: usize,
    pub token_touch_interval: Duration,
    pub max_snapshots: usize,
    pub snapshot_max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: BODY_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections: MAX_CONNECTIONS,
            max_concurrent_pin_hashes: MAX_CONCURRENT_PIN_HASHES,
            failed_auth_burst: FAILED_AUTH_BURST,
            failed_auth_per_minute: FAILED_AUTH_PER_MINUTE,
            writer_restart_delay: WRITER_RESTART_DELAY,
            max_change_waiters: MAX_CHANGE_WAITERS,
            token_touch_interval: TOKEN_TOUCH_INTERVAL,
            max_snapshots: MAX_SNAPSHOTS,
            snapshot_max_duration: SNAPSHOT_MAX_DURATION,
        }
    }
}

impl Limits {
    /// [`Limits::max_connections`], lowered to what the process's open-file limit allows.
    pub fn connection_cap(&self) -> usize {
        match rlimit::getrlimit(rlimit::Resource::NOFILE) {
            Ok((soft, _)) => {
                let fds = usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX);
                self.max_connections.min(fds).max(1)
            }
            Err(_) => self.max_connections,
        }
    }

    /// [`Limits::max_change_waiters`], held to three quarters of
    /// [`Limits::connection_cap`]: waiting devices never take the connections their
    /// own pushes and pulls need.
    pub fn change_waiter_cap(&self) -> usize {
        let connections = self.connection_cap();
        self.max_change_waiters
            .min(connections - connections / 4)
            .max(1)
    }
}

/// Failed authentications per client address (an IPv6 client by its /64, which
/// one host usually owns whole). Successful requests are never counted or slowed.
pub struct FailedAuthLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl FailedAuthLimiter {
    pub fn new(limits: &Limits) -> Self {
        let per_minute = NonZeroU32::new(limits.failed_auth_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.failed_auth_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
        }
    }

    /// Counts a failure from `ip`. `Err(wait)` when the address has used up its
    /// allowance: answer 429 and let it retry after `wait`.
    pub fn failed(&self, ip: IpAddr) -> Result<(), Duration> {
        if self.limiter.len() > MAX_TRACKED_ADDRESSES {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&client_key(ip))
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Lets a repeated warning through at most once per interval and counts the rest.
/// Hand-rolled: it is a timestamp and a counter, smaller than any crate's API.
#[derive(Default)]
pub struct LogThrottle {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl LogThrottle {
    /// `Some(n)` when a line may be logged now; `n` lines were held back since the last one.
    pub fn ready(&self) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < LIMIT_LOG_INTERVAL) {
            self.suppressed.fetch_add(1, Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_is_one_address_and_a_mapped_v4_is_its_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(client_key(mapped), "127.0.0.2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn failures_beyond_the_burst_are_limited_per_address() {
        let limiter = FailedAuthLimiter::new(&Limits::default());
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..FAILED_AUTH_BURST {
            assert!(limiter.failed(one).is_ok());
        }
        let wait = limiter.failed(one).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(limiter.failed(other).is_ok());
    }

    #[test]
    fn the_log_throttle_counts_what_it_holds_back() {
        let t = LogThrottle::default();
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        assert_eq!(t.suppressed.load(Relaxed), 2);
    }
}
