//! Group commit (`SAOMA_GROUP_COMMIT=on`, SQLite; on PostgreSQL only through
//! `Store::open_with` on one node, since two nodes' batches deadlock): one write connection
//! keeps one database transaction open while writers queue for it, and each business operation runs
//! inside it as a savepoint. An operation that fails rolls back to its savepoint alone,
//! never its neighbours'. The batch commits as soon as no writer is waiting (so an idle
//! server commits each operation at once, and batching adds no latency at low load), or
//! when it holds [`BATCH_MAX`] operations. An operation's commit returns only once its
//! batch has committed: an answered payment is as durable as without batching.
//!
//! Reads: an operation sees the writes its neighbours kept in the open batch before they
//! are committed. An operation that commits waits for its batch and is safe. One that
//! answers from what it read without committing (an idempotent retry, a conflict, a
//! refusal) is rolled back to its savepoint when its transaction is dropped; inside
//! [`settled`] (every HTTP request of the server runs there) that answer is held until
//! the batch it read from has committed, and fails if the batch does. So no answer names
//! a row that is then not there.
//!
//! Cancellation: opening an operation, keeping it, committing the batch and rolling back a
//! failed operation run in tasks of their own, so a request dropped half-way (a client
//! hanging up) cannot leave the batch open or its connection inside a transaction.

use crate::{Backend, StoreError, StoreResult};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

/// The most operations one batch commits together.
pub(crate) const BATCH_MAX: usize = 64;

/// What a batch's commit tells each of its operations.
type Flushed = Result<(), Arc<str>>;

/// The writer of one store: the open batch, and how many writers wait for it.
pub(crate) struct Batcher {
    pool: AnyPool,
    /// What opens a batch: on SQLite `BEGIN IMMEDIATE` (the write lock now, not at the
    /// first write), on PostgreSQL `BEGIN`.
    begin: &'static str,
    slot: Arc<Mutex<Batch>>,
    queued: AtomicUsize,
    flushes: Arc<AtomicU64>,
}

/// The open batch: its connection (inside `BEGIN`) and the operations waiting for its
/// commit. No connection: no batch is open.
#[derive(Default)]
struct Batch {
    conn: Option<PoolConnection<Any>>,
    waiters: Vec<oneshot::Sender<Flushed>>,
    /// Operations rolled back to their savepoints whose answers wait for this batch.
    readers: Vec<oneshot::Sender<Flushed>>,
}

type Guard = OwnedMutexGuard<Batch>;

tokio::task_local! {
    /// The commits of the batches the current request read from without committing.
    static UNSETTLED: RefCell<Vec<oneshot::Receiver<Flushed>>>;
}

/// Runs `work` (one request), then waits until every batch it read from without
/// committing has committed: `Err` when one did not, and what `work` answered may rest
/// on writes that are gone. Without group commit there is nothing to wait for.
pub async fn settled<F: Future>(work: F) -> (F::Output, StoreResult<()>) {
    UNSETTLED
        .scope(RefCell::new(Vec::new()), async move {
            let out = work.await;
            (out, settle().await)
        })
        .await
}

/// Inside [`settled`], waits now for the batches read from so far (before reading, through
/// another connection, what a neighbour in the batch wrote); elsewhere does nothing.
pub async fn settle() -> StoreResult<()> {
    settle_after(0).await
}

/// How many reads the current request has waiting for their batches: a mark for
/// [`settle_after`].
pub fn unsettled() -> usize {
    UNSETTLED.try_with(|u| u.borrow().len()).unwrap_or(0)
}

/// Like [`settle`], for the reads registered since `mark` only: those before it stay for
/// the request's own [`settled`] to wait for (and to report if their batch failed).
pub async fn settle_after(mark: usize) -> StoreResult<()> {
    let pending = UNSETTLED
        .try_with(|u| {
            let mut u = u.borrow_mut();
            let from = mark.min(u.len());
            u.split_off(from)
        })
        .unwrap_or_default();
    for told in pending {
        match told.await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(StoreError::Flush(why.to_string())),
            Err(_) => return Err(StoreError::Flush("the batch was dropped".into())),
        }
    }
    Ok(())
}

impl Batcher {
    pub(crate) fn new(pool: AnyPool, backend: Backend, flushes: Arc<AtomicU64>) -> Arc<Batcher> {
        let begin = match backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        Arc::new(Batcher { pool, begin, slot: Arc::default(), queued: AtomicUsize::new(0), flushes })
    }

    /// Waits for the write connection, opens a batch if none is, and starts an operation
    /// in it (a savepoint). Runs in a task of its own: a caller that gives up cannot leave
    /// the connection half-way through `BEGIN`.
    pub(crate) async fn begin(self: &Arc<Self>) -> StoreResult<Lease> {
        let b = self.clone();
        tokio::spawn(async move { b.open().await })
            .await
            .map_err(|e| StoreError::Flush(format!("starting an operation: {e}")))?
    }

    async fn open(self: Arc<Self>) -> StoreResult<Lease> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut guard = self.slot.clone().lock_owned().await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        if guard.conn.is_none() {
            let mut conn = self.pool.acquire().await?;
            if let Err(e) = conn.execute(self.begin).await {
                conn.close_on_drop();
                return Err(StoreError::from(e));
            }
            guard.conn = Some(conn);
        }
        match connection(&mut guard).execute("SAVEPOINT operation").await {
            Ok(_) => Ok(Lease { batcher: self.clone(), guard: Some(guard) }),
            Err(e) => {
                self.abort(guard, &e.to_string()).await;
                Err(StoreError::from(e))
            }
        }
    }

    /// Keeps an operation's writes in the batch and registers it for the batch's commit.
    async fn keep(self: Arc<Self>, mut guard: Guard, tell: oneshot::Sender<Flushed>) {
        match connection(&mut guard).execute("RELEASE SAVEPOINT operation").await {
            Ok(_) => {
                guard.waiters.push(tell);
                self.release(guard);
            }
            Err(e) => {
                let _ = tell.send(Err(Arc::from(e.to_string())));
                self.abort(guard, &e.to_string()).await;
            }
        }
    }

    /// After an operation: commit the batch when nobody waits or it is full; otherwise
    /// hand the connection to the next writer, whose release will commit it.
    fn release(self: Arc<Self>, guard: Guard) {
        let held = guard.waiters.len() + guard.readers.len();
        if self.queued.load(Ordering::SeqCst) == 0 || held >= BATCH_MAX {
            tokio::spawn(async move { self.flush(guard).await });
        }
    }

    /// Commits the open batch (rolls it back when every operation in it was rolled back)
    /// and tells its operations.
    async fn flush(&self, mut guard: Guard) {
        let Some(mut conn) = guard.conn.take() else { return };
        let waiters = std::mem::take(&mut guard.waiters);
        let readers = std::mem::take(&mut guard.readers);
        // Nothing kept: whatever a reader saw of the batch was its own, rolled back.
        let end = if waiters.is_empty() { "ROLLBACK" } else { "COMMIT" };
        let outcome = match conn.execute(end).await {
            Ok(_) => {
                if !waiters.is_empty() {
                    self.flushes.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "A group commit failed; its operations fail.");
                // Whatever state it is in, the connection is not used again.
                conn.close_on_drop();
                Err(Arc::from(e.to_string()))
            }
        };
        drop(conn);
        drop(guard);
        for w in waiters.into_iter().chain(readers) {
            let _ = w.send(outcome.clone());
        }
    }

    /// Rolls the whole batch back after the connection failed under an operation: every
    /// operation waiting for it fails, none is committed.
    async fn abort(self: Arc<Self>, mut guard: Guard, why: &str) {
        tracing::error!(error = why, "A group commit's transaction failed; its operations fail.");
        if let Some(mut conn) = guard.conn.take() {
            let _ = conn.execute("ROLLBACK").await;
            conn.close_on_drop();
        }
        let why: Arc<str> = Arc::from(why);
        let readers = std::mem::take(&mut guard.readers);
        for w in std::mem::take(&mut guard.waiters).into_iter().chain(readers) {
            let _ = w.send(Err(why.clone()));
        }
        drop(guard);
    }

    /// Rolls back an operation that did not commit, alone; `reader`, if given, is told
    /// when the batch it read from ends.
    async fn undo(self: Arc<Self>, mut guard: Guard, reader: Option<oneshot::Sender<Flushed>>) {
        match reader {
            // Nothing kept in the batch yet: all it could read was committed.
            Some(tell) if guard.waiters.is_empty() => {
                let _ = tell.send(Ok(()));
            }
            reader => guard.readers.extend(reader),
        }
        let conn = connection(&mut guard);
        let undone = match conn.execute("ROLLBACK TO SAVEPOINT operation").await {
            Ok(_) => conn.execute("RELEASE SAVEPOINT operation").await,
            Err(e) => Err(e),
        };
        match undone {
            Ok(_) => self.release(guard),
            Err(e) => self.abort(guard, &e.to_string()).await,
        }
    }
}

fn connection(guard: &mut Guard) -> &mut AnyConnection {
    // A lease exists only while a batch is open.
    guard.conn.as_deref_mut().expect("an open batch has its connection")
}

/// One operation's use of the batch's connection, from its savepoint to its commit or
/// rollback.
pub(crate) struct Lease {
    batcher: Arc<Batcher>,
    guard: Option<Guard>,
}

impl Lease {
    pub(crate) fn conn_ref(&self) -> &AnyConnection {
        let guard = self.guard.as_ref().expect("a lease holds the batch until it ends");
        guard.conn.as_deref().expect("an open batch has its connection")
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        connection(self.guard.as_mut().expect("a lease holds the batch until it ends"))
    }

    /// Keeps the operation's writes and returns once its batch has committed. The work
    /// runs in a task of its own, so a caller that gives up cannot leave the batch open.
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        let guard = self.guard.take().expect("a lease holds the batch until it ends");
        let (tell, told) = oneshot::channel();
        tokio::spawn(self.batcher.clone().keep(guard, tell));
        match told.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(StoreError::Flush(why.to_string())),
            Err(_) => Err(StoreError::Flush("the batch was dropped".into())),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let b = self.batcher.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let (tell, told) = oneshot::channel();
                let reader = UNSETTLED.try_with(|u| u.borrow_mut().push(told)).is_ok().then_some(tell);
                rt.spawn(b.undo(guard, reader));
            }
        }
    }
}
