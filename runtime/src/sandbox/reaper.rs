//! Drops finished executions' stores, then frees their pool slots, on a thread of its own:
//! resetting a used instance's memories and tables (a page scan and a reset of every page it
//! dirtied, milliseconds for an interpreter) is then off the path of the run that used it. A
//! store is retired only after its execution was cleaned up (leaked spans closed, output
//! forwarded), so nothing of the run's trace waits on the reaper; its pool slots stay taken
//! until the reset is done, which bounds what can wait here.

use std::sync::mpsc::{Sender, channel};

type Retired = Box<dyn Send>;

/// The sending end of the reaper thread; dropping it ends the thread once its queue is empty.
pub(super) struct Reaper {
    sender: Option<Sender<Retired>>,
}

impl Reaper {
    /// Starts the reaper thread; without one (the machine refused a thread), `retire` drops
    /// in place.
    pub fn start() -> Self {
        let (sender, receiver) = channel::<Retired>();
        let spawned = std::thread::Builder::new()
            .name("kettle-reaper".into())
            .spawn(move || {
                for retired in receiver {
                    drop(retired);
                }
            });
        match spawned {
            Ok(_) => Self {
                sender: Some(sender),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot start the reaper thread; instances are reset in place");
                Self { sender: None }
            }
        }
    }

    /// Drops `retired` on the reaper thread (in place when there is none).
    pub fn retire<T: Send + 'static>(&self, retired: T) {
        if let Some(sender) = &self.sender {
            // A send fails only when the thread is gone; the value comes back and drops here.
            let _ = sender.send(Box::new(retired));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    struct Flag(Arc<AtomicBool>, std::thread::ThreadId);

    impl Drop for Flag {
        fn drop(&mut self) {
            let elsewhere = std::thread::current().id() != self.1;
            self.0.store(elsewhere, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_retired_value_is_dropped_on_the_reaper_thread() {
        let reaper = Reaper::start();
        let dropped_elsewhere = Arc::new(AtomicBool::new(false));
        reaper.retire(Flag(dropped_elsewhere.clone(), std::thread::current().id()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dropped_elsewhere.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(dropped_elsewhere.load(Ordering::SeqCst));
    }
}
