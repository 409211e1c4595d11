//! The test's clock: what the app reads, moved instead of waited for.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use topup_host::clock::ClockSource;

use super::*;

/// The clock the app under test reads: the system clock plus an offset the test moves forward
/// (the host's `--clock-offset-file`), so leases, retry times and TTLs pass without waiting.
pub struct TestClock {
    pub(crate) file: PathBuf,
    offset_ms: AtomicU64,
    /// `spin up` has no clock offset: there, moving the clock means waiting.
    real_time: bool,
}

impl TestClock {
    pub(crate) fn new(dir: &Path) -> Self {
        let file = dir.join("clock-offset-ms");
        std::fs::write(&file, "0").expect("write clock offset");
        Self {
            file,
            offset_ms: AtomicU64::new(0),
            real_time: Runtime::from_env() != Runtime::Host,
        }
    }

    /// The host's view of this clock.
    pub fn source(&self) -> ClockSource {
        ClockSource {
            offset_file: Some(self.file.clone()),
        }
    }

    /// Unix time in ms as the app reads it now.
    pub fn now_ms(&self) -> u64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis();
        u64::try_from(system).expect("ms fit u64") + self.offset_ms.load(Ordering::SeqCst)
    }

    /// Moves the app's clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        if self.real_time {
            std::thread::sleep(by);
            return;
        }
        let ms = u64::try_from(by.as_millis()).expect("ms fit u64");
        let offset = self.offset_ms.fetch_add(ms, Ordering::SeqCst) + ms;
        // Written whole (rename), as the app may read it at any moment.
        let next = self.file.with_extension("next");
        std::fs::write(&next, offset.to_string()).expect("write clock offset");
        std::fs::rename(&next, &self.file).expect("replace clock offset");
    }

    /// Moves the clock until a credit due at `due_ms` (a view's `nextCreditAttemptAt`) is in
    /// a bucket a sweep visits: credits due are kept in 1 s buckets and a bucket is visited
    /// once its end is 2 s in the past (components/core/src/store/schedule.rs).
    pub fn until_sweepable(&self, due_ms: u64) {
        self.advance_to((due_ms / 1_000 + 1) * 1_000 + 2_000 + 50);
    }

    /// Moves the clock to `at_ms` (not back).
    pub fn advance_to(&self, at_ms: u64) {
        let now = self.now_ms();
        if at_ms > now {
            self.advance(Duration::from_millis(at_ms - now));
        }
    }
}
