//! The wall clock components read. Normally the system clock; with `--clock-offset-file` it is
//! the system clock plus the milliseconds written in that file, read on every request, so the
//! end-to-end suite moves time past leases, retry times and TTLs instead of waiting for them.

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
    /// The clock for one request: the offset is read once, when the request starts.
    pub fn wall_clock(&self) -> OffsetWallClock {
        let offset_ms = self
            .offset_file
            .as_ref()
            .and_then(|file| std::fs::read_to_string(file).ok())
            .and_then(|text| text.trim().parse::<i64>().ok())
            .unwrap_or(0);
        OffsetWallClock { offset_ms }
    }
}

/// The system clock shifted by a fixed offset.
pub struct OffsetWallClock {
    offset_ms: i64,
}

impl HostWallClock for OffsetWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let shift = Duration::from_millis(self.offset_ms.unsigned_abs());
        if self.offset_ms >= 0 {
            system.saturating_add(shift)
        } else {
            system.saturating_sub(shift)
        }
    }
}
