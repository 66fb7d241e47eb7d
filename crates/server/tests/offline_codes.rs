//! Proves that offline payment codes cannot be linked: a device's enrolment answer holds
//! no secret shared with any other device, so a second device (anyone can enrol one)
//! learns nothing that unmasks or links the first device's codes, while the server still
//! finds the device and charges the right customer, through either of two nodes. Also
//! that a device fetches its next schedule of locators, and only its owner can.

#[macro_use]
mod common;

use common::*;
use saoma_api::{DeviceEnrolled, OfflineCodeError};
use saoma_core::paycode::{SLOT_SPACE, step_of};
use serde_json::{Value, json};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

async fn a_second_device_cannot_link_or_unmask_the_first(db: Db) {
    let w = World::new(db, 2, 10_000).await;
    let enrol = |c: saoma_client::Client| async move {
        c.call::<Value>("POST", "/v1/wallet/devices", Some(&json!({ "pin": PIN }))).await.unwrap()
    };
    let a_raw = enrol(w.wallet(0).await).await;
    // The attacker's own device, enrolled like anybody's.
    let b_raw = enrol(w.wallet(1).await).await;

    // No platform key in the answer, and no secret of one device in the other's.
    let mut fields: Vec<&String> = b_raw.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["device_id", "schedule", "secret", "slot", "step_seconds"], "{b_raw}");
    let a: DeviceEnrolled = serde_json::from_value(a_raw).unwrap();
    let b: DeviceEnrolled = serde_json::from_value(b_raw).unwrap();
    assert_ne!(a.secret, b.secret);
    assert_ne!(a.schedule.locators, b.schedule.locators);

    // A's codes at different steps share no digits that name the device.
    let first = step_of(now());
    let steps: Vec<i64> = (first..first + 60).collect();
    let loc = |d: &DeviceEnrolled, s: i64| d.schedule.locator_at(s).unwrap();
    let mut a_locators: Vec<u32> = steps.iter().map(|s| loc(&a, *s)).collect();
    a_locators.sort();
    a_locators.dedup();
    assert_eq!(a_locators.len(), steps.len(), "a locator repeats");
    assert!(!a_locators.contains(&a.slot));

    // Under a mask shared by every device, B's own code and A's code of the same step
    // differed by slot(A) - slot(B) at every step: B unmasked A's slot and followed it.
    // Now B's guess of A's slot is a different wrong number at every step.
    let guesses: Vec<u32> =
        steps.iter().map(|s| (loc(&a, *s) + SLOT_SPACE - loc(&b, *s) + b.slot) % SLOT_SPACE).collect();
    assert!(!guesses.contains(&a.slot), "B unmasked A's slot");
    let mut distinct = guesses.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > 55, "A's codes keep a fixed relation to B's: {distinct:?}");

    // The server still finds A's device: A's code pays from A's wallet, once.
    let code = a.code_at(now()).unwrap();
    let p = w.till.create_payment(&charge("link-1", 500, Some(&code))).await.unwrap();
    assert_eq!(p.status, "succeeded");
    assert_eq!((w.balance(0).await, w.balance(1).await), (9_500, 10_000));
    // B's secret on A's locator is no code at all.
    let forged = saoma_api::offline_code(&b.secret, b.slot, &a.schedule, now()).unwrap();
    let err = w.till.create_payment(&charge("link-2", 500, Some(&forged))).await.unwrap_err();
    assert_eq!(err.code(), Some("invalid_payment_code"), "{err}");
    w.assert_balanced().await;
}

async fn a_device_fetches_its_next_schedule_and_only_its_owner_can(db: Db) {
    let w = World::new(db, 2, 10_000).await;
    let owner = w.wallet(0).await;
    let d = owner.enroll_device(PIN).await.unwrap();
    let now_step = step_of(now());
    // Ten minutes back (a slow clock) and 48 hours ahead; past that, no code.
    assert!(
        d.schedule.first_step <= now_step - 20 && d.schedule.first_step >= now_step - 21,
        "{:?}",
        d.schedule.first_step
    );
    assert_eq!(d.schedule.steps, 20 + 48 * 120);
    assert!(matches!(d.code_at(now() + 49 * 3600), Err(OfflineCodeError::OutsideSchedule { .. })));

    // Fetched again while online: the same locators for the same steps, reaching further.
    let next = owner.device_schedule(&d.device_id).await.unwrap();
    assert!(next.first_step >= d.schedule.first_step);
    assert_eq!(next.locator_at(now_step).unwrap(), d.schedule.locator_at(now_step).unwrap());
    let refreshed = DeviceEnrolled { schedule: next, ..d.clone() };
    let p = w
        .till
        .create_payment(&charge("sched-1", 300, Some(&refreshed.code_at(now()).unwrap())))
        .await
        .unwrap();
    assert_eq!(p.status, "succeeded");

    // Another customer, or an id that names no device: not found.
    let other = w.wallet(1).await;
    for id in [d.device_id.as_str(), "dev_nothing"] {
        let err = other.device_schedule(id).await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")), "{err}");
    }
    let anonymous = saoma_client::Client::new(&w.url(), saoma_client::Credentials::None);
    assert_eq!(anonymous.device_schedule(&d.device_id).await.unwrap_err().status(), Some(401));
}

async fn a_device_works_through_either_node(db: Db) {
    let w = World::new(db, 1, 10_000).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = saoma_server::start(config(&w.db), listener).await.unwrap();
    // Enrolled through node A, paid through node B.
    let d = w.wallet(0).await.enroll_device(PIN).await.unwrap();
    let code = d.code_at(now()).unwrap();
    let p = w.till.at(&b.url()).create_payment(&charge("node-1", 200, Some(&code))).await.unwrap();
    assert_eq!(p.status, "succeeded");
    // Node B hands out the same locators as node A: one locator key for the cluster.
    let on_b = w.wallet(0).await.at(&b.url());
    let next = on_b.device_schedule(&d.device_id).await.unwrap();
    for step in [step_of(now()), step_of(now()) + 100] {
        assert_eq!(next.locator_at(step).unwrap(), d.schedule.locator_at(step).unwrap());
    }
    b.stop().await.unwrap();
}

on_both!(
    a_second_device_cannot_link_or_unmask_the_first,
    a_device_fetches_its_next_schedule_and_only_its_owner_can
);
on_postgres!(a_device_works_through_either_node);
