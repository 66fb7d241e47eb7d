//! The commit wrapper: one business operation's database transaction, with what must
//! happen once it has committed (wake live feeds and long-polls on this node, announce to
//! the other nodes, count in metrics). Those side effects run after the commit, never
//! before it, and never forgotten: [`Work::commit`] is the only way to commit a [`Work`].

use crate::AppState;
use saoma_store::{StoreError, WriteTx};
use std::ops::{Deref, DerefMut};

/// Something to count once the transaction has committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    PaymentSucceeded,
    PaymentFailed,
    RefundSucceeded,
}

/// A transaction and its effects after commit. Dropping it rolls back and runs nothing.
pub struct Work {
    tx: WriteTx,
    effects: Vec<Effect>,
}

impl Work {
    /// Starts a business operation's transaction.
    pub async fn begin(state: &AppState) -> Result<Work, StoreError> {
        Ok(Work { tx: state.store.begin().await?, effects: Vec::new() })
    }

    /// Counts `e` if, and only if, this transaction commits.
    pub fn on_commit(&mut self, e: Effect) {
        self.effects.push(e);
    }

    /// Commits, then wakes this node's waiters, announces the change to the other nodes
    /// and counts the effects.
    pub async fn commit(self, state: &AppState) -> Result<(), StoreError> {
        self.tx.commit().await?;
        state.committed();
        for e in self.effects {
            match e {
                Effect::PaymentSucceeded => {
                    metrics::counter!("saoma_payments_total", "status" => "succeeded").increment(1)
                }
                Effect::PaymentFailed => {
                    metrics::counter!("saoma_payments_total", "status" => "failed").increment(1)
                }
                Effect::RefundSucceeded => metrics::counter!("saoma_refunds_total").increment(1),
            }
        }
        Ok(())
    }
}

impl Deref for Work {
    type Target = WriteTx;
    fn deref(&self) -> &WriteTx {
        &self.tx
    }
}

impl DerefMut for Work {
    fn deref_mut(&mut self) -> &mut WriteTx {
        &mut self.tx
    }
}
