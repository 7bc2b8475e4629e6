//! A stand-in for js-sys outside the browser: `Date::now`, the only part luars uses, read from
//! the system (WASI) wall clock instead of JavaScript's `Date`.

use std::time::{SystemTime, UNIX_EPOCH};

/// JavaScript's `Date`, reduced to its clock.
pub struct Date;

impl Date {
    /// Milliseconds since the Unix epoch, as JavaScript's `Date.now()` returns them.
    pub fn now() -> f64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    }
}
