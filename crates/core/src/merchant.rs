//! A merchant's review (KYC) as a state machine, and the checks on what it applies with.
//!
//! `pending_review` → `active` (approve) or `rejected` (reject, with a reason); the
//! operator may ask for more (`pending_review` again, the application `more_info`);
//! `active` ↔ `suspended` (suspend, reinstate). A rejected merchant may apply again.
//! Only `active` takes payments.

/// What happens to a merchant's review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// The merchant submits (or resubmits) its application.
    Apply,
    Approve,
    Reject,
    RequestInfo,
    Suspend,
    Reinstate,
}

impl Review {
    /// Every event, for exhaustive tests.
    pub const ALL: [Review; 6] = [
        Review::Apply,
        Review::Approve,
        Review::Reject,
        Review::RequestInfo,
        Review::Suspend,
        Review::Reinstate,
    ];
}

/// The merchant status after `event`, or `None` when the event does not apply.
pub fn next_status(status: &str, event: Review) -> Option<&'static str> {
    use Review::*;
    match (status, event) {
        ("pending_review" | "rejected", Apply) => Some("pending_review"),
        ("pending_review", Approve) => Some("active"),
        ("pending_review", Reject) => Some("rejected"),
        ("pending_review", RequestInfo) => Some("pending_review"),
        ("active", Suspend) => Some("suspended"),
        ("suspended", Reinstate) => Some("active"),
        _ => None,
    }
}

/// The application's own status after `event` (`submitted`, `more_info`, `approved`,
/// `rejected`).
pub fn application_status(event: Review) -> Option<&'static str> {
    match event {
        Review::Apply => Some("submitted"),
        Review::Approve => Some("approved"),
        Review::Reject => Some("rejected"),
        Review::RequestInfo => Some("more_info"),
        Review::Suspend | Review::Reinstate => None,
    }
}

/// Kinds of document an application may reference by hash.
pub const DOCUMENT_KINDS: &[&str] =
    &["business_licence", "owner_id_front", "owner_id_back", "shop_front", "bank_account_proof", "other"];

/// A business licence number: 5-32 of `[A-Z0-9-]` (a Chinese unified social credit code
/// is 18).
pub fn valid_licence_number(s: &str) -> bool {
    (5..=32).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// An identity document number: 5-32 of `[A-Z0-9]`.
pub fn valid_id_number(s: &str) -> bool {
    (5..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A document's SHA-256: 64 lower-case hex digits.
pub fn valid_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What an operator may see of an identity number: its last four characters.
pub fn masked_id_number(s: &str) -> String {
    let tail: String = s.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{}{tail}", "*".repeat(s.chars().count().saturating_sub(4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUSES: [&str; 4] = ["pending_review", "active", "rejected", "suspended"];

    #[test]
    fn only_review_makes_a_merchant_active() {
        for s in STATUSES {
            for e in Review::ALL {
                if next_status(s, e) == Some("active") {
                    assert!(matches!(
                        (s, e),
                        ("pending_review", Review::Approve) | ("suspended", Review::Reinstate)
                    ));
                }
            }
        }
    }

    #[test]
    fn every_status_has_a_way_forward_and_rejected_can_apply_again() {
        for s in STATUSES {
            assert!(Review::ALL.iter().any(|e| next_status(s, *e).is_some()), "{s} is a dead end");
        }
        assert_eq!(next_status("rejected", Review::Apply), Some("pending_review"));
        assert_eq!(
            next_status("rejected", Review::Approve),
            None,
            "a rejection is not undone without a new application"
        );
        assert_eq!(next_status("suspended", Review::Approve), None, "reinstate, not approve");
        assert_eq!(next_status("active", Review::Apply), None);
    }

    #[test]
    fn identity_numbers_are_masked() {
        assert_eq!(masked_id_number("110101199003071234"), "**************1234");
        assert_eq!(masked_id_number("AB1"), "AB1");
        assert!(valid_licence_number("91330100MA2KXXXX1Y"));
        assert!(!valid_licence_number("91 33"));
        assert!(valid_sha256(&"a".repeat(64)));
        assert!(!valid_sha256(&"A".repeat(64)));
    }
}
