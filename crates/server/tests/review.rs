//! Merchant review (KYC) end to end: a new merchant cannot take payments; it applies with
//! its licence, owner identity and documents by hash; the operator asks for more, rejects
//! with a reason, approves; suspends and reinstates. Every step is audited and only an
//! active merchant is paid.

#[macro_use]
mod common;

use common::*;
use saoma_api as api;
use saoma_client::{Client, Credentials};

const OWNER_ID: &str = "110101199003071234";

fn document(kind: &str, digit: &str) -> api::Document {
    api::Document { kind: kind.into(), sha256: digit.repeat(64) }
}

fn application(licence: &str) -> api::Application {
    api::Application {
        legal_name: "Hangzhou Dragon Well Tea Co., Ltd.".into(),
        licence_number: licence.into(),
        owner_name: "Chen Jing".into(),
        owner_id_number: OWNER_ID.into(),
        documents: vec![document("business_licence", "a"), document("owner_id_front", "b")],
    }
}

async fn can_take_payments(
    w: &World,
    till: &Client,
    otn: &str,
) -> Result<api::Payment, saoma_client::ClientError> {
    let code = w.wallet(0).await.payment_code().await.unwrap().code;
    till.create_payment(&charge(otn, 100, Some(&code))).await
}

async fn review_from_application_to_payments(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let m = w.admin.create_merchant(&merchant_req("Dragon Well")).await.unwrap();
    assert_eq!(m.status, "pending_review");
    let k =
        |k: api::KeyCreated| Client::new(&w.url(), Credentials::Key { key_id: k.key_id, secret: k.secret });
    let owner = k(w.admin.create_key(&m.id, None).await.unwrap());
    let t = w.admin.create_terminal(&m.id, "Counter").await.unwrap();
    let till = k(w.admin.create_key(&m.id, Some(&t.id)).await.unwrap());
    let inactive = can_take_payments(&w, &till, "k-0").await.unwrap_err();
    assert_eq!(inactive.code(), Some("merchant_inactive"));
    assert_eq!(owner.own_application().await.unwrap_err().status(), Some(404));

    // Bad applications are refused with the field named.
    let mut bad = application("91330100MA2K");
    bad.documents = vec![document("shop_front", "c")];
    assert_eq!(owner.apply(&bad).await.unwrap_err().code(), Some("invalid_request"));
    assert_eq!(owner.apply(&application("91 33")).await.unwrap_err().code(), Some("invalid_request"));
    assert_eq!(till.apply(&application("91330100MA2K")).await.unwrap_err().status(), Some(403));

    let a = owner.apply(&application("91330100MA2K")).await.unwrap();
    assert_eq!((a.status.as_str(), a.owner_id_number.as_str()), ("submitted", "**************1234"));
    assert_eq!(w.admin.application(&m.id).await.unwrap().documents[0].kind, "business_licence");

    // Asked for more: the merchant sees why, and approval waits for the new application.
    w.admin.request_info(&m.id, "the licence scan is unreadable").await.unwrap();
    let asked = owner.own_application().await.unwrap();
    assert_eq!(
        (asked.status.as_str(), asked.reason.as_deref()),
        ("more_info", Some("the licence scan is unreadable"))
    );
    let early = w.admin.approve_merchant(&m.id).await.unwrap_err();
    assert_eq!(early.code(), Some("application_not_submitted"));

    // Rejected with a reason (a reason is required); a rejected merchant is not paid.
    owner.apply(&application("91330100MA2K")).await.unwrap();
    let no_reason = w.admin.reject_merchant(&m.id, " ").await.unwrap_err();
    assert_eq!(no_reason.code(), Some("invalid_request"));
    assert_eq!(w.admin.reject_merchant(&m.id, "licence expired in 2024").await.unwrap().status, "rejected");
    assert_eq!(w.admin.approve_merchant(&m.id).await.unwrap_err().code(), Some("invalid_transition"));
    assert_eq!(can_take_payments(&w, &till, "k-1").await.unwrap_err().code(), Some("merchant_inactive"));

    // A new application, approved: payments flow.
    owner.apply(&application("91330100MA2KXXXX1Y")).await.unwrap();
    assert_eq!(w.admin.approve_merchant(&m.id).await.unwrap().status, "active");
    let decided = w.admin.application(&m.id).await.unwrap();
    assert_eq!((decided.status.as_str(), decided.decided_by.as_deref()), ("approved", Some("admin")));
    assert_eq!(can_take_payments(&w, &till, "k-2").await.unwrap().status, "succeeded");

    // Suspended, then reinstated with a reason.
    w.admin.suspend_merchant(&m.id).await.unwrap();
    assert_eq!(can_take_payments(&w, &till, "k-3").await.unwrap_err().code(), Some("merchant_inactive"));
    assert_eq!(
        owner.apply(&application("91330100MA2KXXXX1Y")).await.unwrap_err().code(),
        Some("invalid_transition")
    );
    assert_eq!(w.admin.reinstate_merchant(&m.id, "").await.unwrap_err().code(), Some("invalid_request"));
    assert_eq!(w.admin.reinstate_merchant(&m.id, "fraud report withdrawn").await.unwrap().status, "active");
    assert_eq!(can_take_payments(&w, &till, "k-4").await.unwrap().status, "succeeded");
    assert!(w.admin.verify_audit().await.unwrap().intact);

    // The owner's identity number is sealed at rest.
    if !w.db.is_postgres() {
        let path = w.db.url.trim_start_matches("sqlite://").to_string();
        for suffix in ["", "-wal"] {
            let bytes = std::fs::read(format!("{path}{suffix}")).unwrap_or_default();
            assert!(
                !bytes.windows(OWNER_ID.len()).any(|b| b == OWNER_ID.as_bytes()),
                "identity number in {suffix}"
            );
        }
    }
}

on_both!(review_from_application_to_payments);
