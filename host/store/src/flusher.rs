//! The store's flush thread: [`Store::flush_async`](crate::Store::flush_async)
//! without sled's own `flush_async`.
//!
//! sled 0.34.7's `Tree::flush_async` runs each flush as a task of sled's
//! I/O thread pool, and the write that makes a flush stable is a task of
//! that same pool. The pool keeps seven idle threads and only grows when
//! more than seven tasks wait, so eight concurrent `flush_async` calls
//! occupy every thread while the write they wait for sits in the queue:
//! they never return (sled issues #1241 and #1308, fixed on sled's main
//! branch but never released). wactor's partition workers flush
//! concurrently, and a host hung this way at a re-drive of 3,000 dead
//! letters.
//!
//! This module owns one thread per open store that runs sled's blocking
//! `flush` on behalf of async callers, so sled's pool never holds a
//! waiting flush. Requests that arrive while a flush runs are answered
//! together by the next one (group commit): one fsync for every flush
//! asked for meanwhile. It does not own what a flush covers (sled's) nor
//! the blocking [`Store::flush`](crate::Store::flush), which runs on the
//! caller's thread.

use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

/// The answer to one flush request: sled's result of a flush that began
/// after the request was made.
type Reply = oneshot::Sender<Result<(), sled::Error>>;

/// Handle on the flush thread of one open store. Dropping it (with the
/// last clone of the store) stops the thread and waits for it, so the
/// database is closed when the store is.
pub(crate) struct Flusher {
    requests: Option<mpsc::Sender<Reply>>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts the flush thread of `db`.
    ///
    /// # Errors
    /// The OS error when the thread cannot be spawned.
    pub(crate) fn start(db: sled::Db) -> std::io::Result<Self> {
        let (requests, queue) = mpsc::channel::<Reply>();
        let thread = std::thread::Builder::new()
            .name("wactor-store-flush".into())
            .spawn(move || run(&db, &queue))?;
        Ok(Flusher {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Waits until a flush that began after this call has finished.
    pub(crate) async fn flush(&self) -> Result<(), sled::Error> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|requests| requests.send(reply).is_ok());
        if !sent {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once it has answered
        // every request already queued.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store's flush thread panicked");
            }
        }
    }
}

/// The thread's loop: take every waiting request, flush once, answer all.
fn run(db: &sled::Db, queue: &mpsc::Receiver<Reply>) {
    while let Ok(first) = queue.recv() {
        let mut waiting = vec![first];
        waiting.extend(queue.try_iter());
        let result = db.flush().map(|_| ());
        for reply in waiting {
            // A caller that stopped waiting no longer needs the answer.
            let _ = reply.send(result.clone());
        }
    }
}

fn stopped() -> sled::Error {
    sled::Error::ReportableBug("the store's flush thread has stopped".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// sled's own `flush_async` hangs for good at eight or more concurrent
    /// calls (see the module doc); this is the shape that hung a host.
    #[test]
    fn many_concurrent_flushes_all_return() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let flusher = std::sync::Arc::new(Flusher::start(db.clone()).unwrap());
        runtime.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..200u32 {
                let db = db.clone();
                let flusher = flusher.clone();
                tasks.push(tokio::spawn(async move {
                    db.insert(i.to_be_bytes(), vec![0; 512]).unwrap();
                    flusher.flush().await
                }));
            }
            let all = await_in_order(tasks);
            let results = tokio::time::timeout(std::time::Duration::from_secs(60), all)
                .await
                .expect("every flush returns");
            assert!(results.iter().all(|r| matches!(r, Ok(Ok(())))));
        });
    }

    async fn await_in_order<T>(
        tasks: Vec<tokio::task::JoinHandle<T>>,
    ) -> Vec<Result<T, tokio::task::JoinError>> {
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(task.await);
        }
        out
    }

    #[test]
    fn a_flush_after_the_thread_stopped_is_an_error_not_a_hang() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mut flusher = Flusher::start(db).unwrap();
        flusher.requests.take();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(runtime.block_on(flusher.flush()).is_err());
    }
}
