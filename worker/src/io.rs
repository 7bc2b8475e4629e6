//! The NATS connection's own thread and runtime, and the bridge from the synchronous
//! `CheckpointStore` calls to it.
//!
//! The engine calls its checkpoint store synchronously from async code (a save after each
//! node, a tape write after each LLM call). Those calls must not wait on a future that needs
//! the caller's runtime to make progress: with every worker thread of the run's runtime in a
//! store call, nothing would be left to drive the connection. So the client lives on a thread
//! of its own (a current-thread runtime nobody else blocks), a store call spawns its request
//! there and waits for the answer; on a multi-thread runtime the wait is wrapped in
//! `block_in_place`, so that the caller's other tasks move to another thread meanwhile.

use std::future::Future;
use tokio::runtime::{Handle, RuntimeFlavor};

/// The thread the NATS connection runs on; it stops when this is dropped.
pub struct IoThread {
    handle: Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl IoThread {
    pub fn start() -> std::io::Result<Self> {
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("kettle-nats".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let _ = handle_tx.send(Ok(runtime.handle().clone()));
                        runtime.block_on(async {
                            let _ = stopped.await;
                        });
                    }
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                    }
                }
            })?;
        let handle = handle_rx
            .recv()
            .map_err(|_| std::io::Error::other("the NATS thread did not start"))??;
        Ok(Self {
            handle,
            _stop: stop,
        })
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// Runs `future` on the NATS thread and waits for its output, from any thread; `None` when
/// the NATS thread is gone.
pub fn wait_on<T: Send + 'static>(
    io: &Handle,
    future: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    io.spawn(async move {
        let _ = tx.send(future.await);
    });
    let wait = move || rx.recv().ok();
    match Handle::try_current() {
        Ok(current) if current.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}
