//! The audit log's hash chain. Each record's hash covers the previous record's hash and
//! every field of the record, so editing, deleting or reordering any record breaks every
//! link after it. Records are spread over a few independent chains so that concurrent
//! writers do not all queue on one chain head; each chain verifies on its own.
//!
//! A chain alone cannot show that its tail was cut (and its head row moved back) or that a
//! whole chain was removed: signed checkpoints anchor the heads. A walk anchored at a
//! checkpoint's head of its chain must pass through that record with that hash, and every
//! chain a checkpoint names must still be there ([`chains_missing`]).

use sha2::{Digest, Sha256};

/// The hash before a chain's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of one audit record, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFields<'a> {
    pub chain: i64,
    pub chain_seq: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub object_id: &'a str,
    pub detail: &'a str,
    pub created_at: &'a str,
}

/// The hash of a record linked after `prev_hash` (lower-case hex SHA-256). Each field is
/// length-prefixed, so no two different records serialise alike.
pub fn link_hash(prev_hash: &str, f: &AuditFields<'_>) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &f.chain.to_string(),
        &f.chain_seq.to_string(),
        f.actor,
        f.action,
        f.object_id,
        f.detail,
        f.created_at,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored record with its link, for verification.
#[derive(Debug, Clone)]
pub struct StoredLink<'a> {
    pub fields: AuditFields<'a>,
    pub prev_hash: &'a str,
    pub hash: &'a str,
}

/// Where a chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub chain: i64,
    pub chain_seq: i64,
    pub reason: String,
}

/// Walks one chain in `chain_seq` order, a page at a time, so a chain of any length is
/// checked in bounded memory.
#[derive(Debug, Clone)]
pub struct ChainWalk {
    chain: i64,
    prev: String,
    seen: i64,
    anchor: Option<(i64, String)>,
}

impl ChainWalk {
    /// A walk from the chain's first record.
    pub fn new(chain: i64) -> ChainWalk {
        ChainWalk { chain, prev: GENESIS.to_string(), seen: 0, anchor: None }
    }

    /// A walk that must pass through `anchor` (sequence number and hash), the head of this
    /// chain a signed checkpoint recorded.
    pub fn anchored(chain: i64, anchor: Option<(i64, &str)>) -> ChainWalk {
        ChainWalk { anchor: anchor.map(|(seq, hash)| (seq, hash.to_string())), ..ChainWalk::new(chain) }
    }

    fn broken(&self, seq: i64, reason: &str) -> BrokenLink {
        BrokenLink { chain: self.chain, chain_seq: seq, reason: reason.to_string() }
    }

    /// How many records the walk has checked.
    pub fn seen(&self) -> i64 {
        self.seen
    }

    /// Checks the next records of the chain; returns the first broken link.
    pub fn step(&mut self, links: &[StoredLink<'_>]) -> Result<(), BrokenLink> {
        for l in links {
            let expected_seq = self.seen + 1;
            if l.fields.chain_seq != expected_seq {
                return Err(self.broken(expected_seq, "a record is missing or out of order"));
            }
            if l.prev_hash != self.prev {
                return Err(self.broken(expected_seq, "the link to the previous record is wrong"));
            }
            if link_hash(&self.prev, &l.fields) != l.hash {
                return Err(self.broken(expected_seq, "the record was changed after it was written"));
            }
            if let Some((seq, hash)) = &self.anchor
                && *seq == expected_seq
                && hash != l.hash
            {
                return Err(self.broken(
                    expected_seq,
                    "the record differs from the signed checkpoint (the chain was rewritten)",
                ));
            }
            self.prev = l.hash.to_string();
            self.seen = expected_seq;
        }
        Ok(())
    }

    /// After the last record: the walk must end where the chain's head says.
    pub fn finish(&self, head: Option<(i64, &str)>) -> Result<(), BrokenLink> {
        let last = self.seen;
        if let Some((seq, _)) = &self.anchor
            && *seq > last
        {
            let reason = format!("the chain was cut: the signed checkpoint saw {seq} records");
            return Err(self.broken(last + 1, &reason));
        }
        match head {
            Some((seq, hash)) if seq != last || hash != self.prev => {
                Err(self.broken(last + 1, "records after this point were removed"))
            }
            None if last > 0 => Err(self.broken(last, "the chain has no head")),
            _ => Ok(()),
        }
    }
}

/// The chains a checkpoint names (chain, its records then) that are no longer there at all:
/// neither a head nor a record. Each was removed whole.
pub fn chains_missing(checkpoint: &[(i64, i64)], present: &[i64]) -> Vec<(i64, i64)> {
    checkpoint.iter().copied().filter(|(chain, seq)| *seq > 0 && !present.contains(chain)).collect()
}

/// Checks one whole chain, given in `chain_seq` order, against its head (the last hash
/// and sequence number recorded for the chain). Returns the first broken link.
pub fn verify_chain(
    chain: i64,
    links: &[StoredLink<'_>],
    head: Option<(i64, &str)>,
) -> Result<(), BrokenLink> {
    let mut walk = ChainWalk::new(chain);
    walk.step(links)?;
    walk.finish(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<(AuditFields<'static>, String, String)> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let f = AuditFields {
                    chain: 0,
                    chain_seq: seq,
                    actor: "key_1",
                    action: "payment.charge",
                    object_id: "pay_1",
                    detail: "{\"amount\":100}",
                    created_at: "2026-11-25T10:00:00.000Z",
                };
                let h = link_hash(&prev, &f);
                let out = (f, prev.clone(), h.clone());
                prev = h;
                out
            })
            .collect()
    }

    fn links<'a>(c: &'a [(AuditFields<'static>, String, String)]) -> Vec<StoredLink<'a>> {
        c.iter().map(|(f, p, h)| StoredLink { fields: f.clone(), prev_hash: p, hash: h }).collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_any_edit_is_named() {
        let c = chain(5);
        let head = Some((5, c[4].2.as_str()));
        assert_eq!(verify_chain(0, &links(&c), head), Ok(()));

        let mut edited = c.clone();
        edited[2].0.detail = "{\"amount\":1}";
        let err = verify_chain(0, &links(&edited), head).unwrap_err();
        assert_eq!((err.chain_seq, err.reason.contains("changed")), (3, true));

        let mut removed = c.clone();
        removed.remove(1);
        assert_eq!(verify_chain(0, &links(&removed), head).unwrap_err().chain_seq, 2);

        let truncated = c[..4].to_vec();
        assert_eq!(verify_chain(0, &links(&truncated), head).unwrap_err().chain_seq, 5);
    }

    #[test]
    fn a_walk_in_pages_finds_what_a_whole_walk_finds() {
        let c = chain(10);
        let head = Some((10, c[9].2.as_str()));
        let mut edited = c.clone();
        edited[7].0.detail = "{\"amount\":1}";
        for (records, expect) in [(&c, None), (&edited, Some(8))] {
            for page in [1, 3, 10, 11] {
                let all = links(records);
                let mut walk = ChainWalk::new(0);
                let got = all.chunks(page).try_for_each(|p| walk.step(p)).and_then(|()| walk.finish(head));
                assert_eq!(got.err().map(|b| b.chain_seq), expect, "pages of {page}");
            }
        }
    }

    #[test]
    fn an_anchored_walk_finds_a_cut_tail_and_a_rewritten_chain() {
        let c = chain(6);
        let anchor = Some((4, c[3].2.as_str()));
        let walk = |records: &[(AuditFields<'static>, String, String)], head: Option<(i64, &str)>| {
            let mut w = ChainWalk::anchored(0, anchor);
            w.step(&links(records)).and_then(|()| w.finish(head))
        };
        // Intact, with records after the checkpoint.
        assert_eq!(walk(&c, Some((6, c[5].2.as_str()))), Ok(()));
        // The tail cut back before the checkpoint, the head row moved back to match: the
        // chain alone is consistent, the checkpoint is not.
        let cut = c[..3].to_vec();
        assert_eq!(verify_chain(0, &links(&cut), Some((3, cut[2].2.as_str()))), Ok(()));
        let err = walk(&cut, Some((3, cut[2].2.as_str()))).unwrap_err();
        assert_eq!(err.chain_seq, 4);
        assert!(err.reason.contains("cut"), "{}", err.reason);
        // Cutting only records after the checkpoint is beyond its reach.
        let late = c[..5].to_vec();
        assert_eq!(walk(&late, Some((5, late[4].2.as_str()))), Ok(()));
        // The whole chain rewritten with fresh hashes from an edited record on.
        let mut prev = GENESIS.to_string();
        let rewritten: Vec<_> = c
            .iter()
            .map(|(f, _, _)| {
                let f = if f.chain_seq == 2 { AuditFields { detail: "{}", ..f.clone() } } else { f.clone() };
                let h = link_hash(&prev, &f);
                let out = (f, prev.clone(), h.clone());
                prev = h;
                out
            })
            .collect();
        let err = walk(&rewritten, Some((6, rewritten[5].2.as_str()))).unwrap_err();
        assert_eq!(err.chain_seq, 4);
        assert!(err.reason.contains("rewritten"), "{}", err.reason);
    }

    #[test]
    fn a_chain_removed_whole_is_missing() {
        let checkpoint = [(0, 12), (1, 0), (2, 7)];
        assert_eq!(chains_missing(&checkpoint, &[0, 1, 2]), vec![]);
        assert_eq!(chains_missing(&checkpoint, &[0]), vec![(2, 7)]);
    }

    #[test]
    fn fields_cannot_slide_into_each_other() {
        let a = AuditFields {
            chain: 0,
            chain_seq: 1,
            actor: "ab",
            action: "c",
            object_id: "",
            detail: "",
            created_at: "",
        };
        let b = AuditFields { actor: "a", action: "bc", ..a.clone() };
        assert_ne!(link_hash(GENESIS, &a), link_hash(GENESIS, &b));
    }
}
