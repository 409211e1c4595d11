//! The wall clock components read. Normally the system clock; with `--clock-offset-file` it is
//! the system clock plus the milliseconds written in that file, read at every reading of the
//! clock (a reused WASIp3 instance lives across requests), so the end-to-end suite moves time
//! past leases, retry times and TTLs instead of waiting for them.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::HostWallClock;

/// Where the wall clock comes from.
#[derive(Debug, Clone, Default)]
pub struct ClockSource {
    /// A file holding a signed offset in milliseconds (absent file = no offset).
    pub offset_file: Option<PathBuf>,
}

impl ClockSource {
    /// The clock of one instance.
    pub fn wall_clock(&self) -> OffsetWallClock {
        OffsetWallClock {
            offset_file: self.offset_file.clone(),
            last_ms: std::sync::atomic::AtomicI64::new(0),
        }
    }
}

/// The system clock shifted by the offset in a file (none: the system clock).
pub struct OffsetWallClock {
    offset_file: Option<PathBuf>,
    /// The last offset read: a file caught mid-write (empty) never moves the clock back.
    last_ms: std::sync::atomic::AtomicI64,
}

impl OffsetWallClock {
    fn offset_ms(&self) -> i64 {
        use std::sync::atomic::Ordering;
        let Some(file) = &self.offset_file else {
            return 0;
        };
        match std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
        {
            Some(offset) => {
                self.last_ms.store(offset, Ordering::Relaxed);
                offset
            }
            None => self.last_ms.load(Ordering::Relaxed),
        }
    }
}

impl HostWallClock for OffsetWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let offset_ms = self.offset_ms();
        let shift = Duration::from_millis(offset_ms.unsigned_abs());
        if offset_ms >= 0 {
            system.saturating_add(shift)
        } else {
            system.saturating_sub(shift)
        }
    }
}
