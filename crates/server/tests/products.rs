//! Proves the catalogue and its stock over HTTP on both backends: products with cursor
//! pagination, search and low-stock filters; payments whose `{sku, quantity}` lines are
//! priced from the catalogue (`amount_mismatch` otherwise); stock that goes down in the
//! payment's own transaction and comes back with a refund of items or a cancel;
//! `out_of_stock` naming the sku; exactly one of two tills selling the last unit; a
//! dynamic code that takes stock when paid, not when shown; and movements that explain
//! every unit.

#[macro_use]
mod common;

use common::*;
use saoma_api as api;
use saoma_client::ClientError;

fn product(sku: &str, price: i64, stock: Option<i64>) -> api::CreateProductRequest {
    api::CreateProductRequest {
        sku: sku.into(),
        name: format!("Product {sku}"),
        price,
        currency: "CNY".into(),
        stock,
        barcode: None,
        active: None,
        low_stock_threshold: None,
    }
}

/// A page of the catalogue of `limit` products after `cursor`.
fn page(limit: i64, cursor: Option<String>) -> api::ProductsQuery {
    api::ProductsQuery { limit: Some(limit), cursor, ..Default::default() }
}

/// The products whose barcode, sku or name matches `q`.
fn search(q: &str) -> api::ProductsQuery {
    api::ProductsQuery { q: Some(q.into()), ..Default::default() }
}

fn line(sku: &str, quantity: u32) -> api::Item {
    api::Item { sku: Some(sku.into()), name: String::new(), quantity, unit_amount: 0 }
}

fn sale(otn: &str, amount: i64, items: Vec<api::Item>, code: Option<&str>) -> api::CreatePaymentRequest {
    api::CreatePaymentRequest {
        out_trade_no: otn.into(),
        amount,
        currency: "CNY".into(),
        subject: "Shop".into(),
        items: Some(items),
        payment_code: code.map(str::to_string),
        expires_in: None,
    }
}

fn sku_of(e: &ClientError) -> Option<String> {
    match e {
        ClientError::Api { error, .. } => error.sku.clone(),
        _ => None,
    }
}

async fn stock(w: &World, id: &str) -> Option<i64> {
    w.merchant.product(id).await.unwrap().stock
}

/// The stock of a product equals the sum of its movements.
async fn explained(w: &World, id: &str) {
    let moves =
        w.merchant.stock_movements(id, &api::PageQuery { limit: Some(100), cursor: None }).await.unwrap();
    let sum: i64 = moves.data.iter().map(|m| m.delta).sum();
    assert_eq!(Some(sum), stock(w, id).await, "movements explain the stock: {:?}", moves.data);
}

async fn catalogue_pages_searches_and_guards(db: Db) {
    let w = World::new(db, 0, 0).await;
    for i in 0..5 {
        let mut p = product(&format!("TEA-{i}"), 100 + i, Some(10));
        p.barcode = Some(format!("690000000000{i}"));
        p.low_stock_threshold = Some(if i == 3 { 10 } else { 2 });
        w.merchant.create_product(&p).await.unwrap();
    }
    // Cursor pagination walks every product once, in creation order.
    let first = w.merchant.products(&page(2, None)).await.unwrap();
    assert_eq!(first.data.iter().map(|p| p.sku.as_str()).collect::<Vec<_>>(), ["TEA-0", "TEA-1"]);
    let cursor = first.next_cursor.clone().unwrap();
    let second = w.merchant.products(&page(2, Some(cursor))).await.unwrap();
    assert_eq!(second.data.iter().map(|p| p.sku.as_str()).collect::<Vec<_>>(), ["TEA-2", "TEA-3"]);
    let third = w.merchant.products(&page(2, second.next_cursor)).await.unwrap();
    assert_eq!((third.data.len(), third.next_cursor), (1, None));
    // Search by barcode (a scanned item), by sku, by part of the name; the till may read.
    let scanned = w.till.products(&search("6900000000002")).await.unwrap();
    assert_eq!(scanned.data.iter().map(|p| p.sku.as_str()).collect::<Vec<_>>(), ["TEA-2"]);
    assert_eq!(w.till.products(&search("TEA-4")).await.unwrap().data.len(), 1);
    assert_eq!(w.till.products(&search("product tea")).await.unwrap().data.len(), 5);
    let low = w
        .merchant
        .products(&api::ProductsQuery { low_stock: Some(true), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(low.data.iter().map(|p| (p.sku.as_str(), p.low_stock)).collect::<Vec<_>>(), [("TEA-3", true)]);
    // A till cannot change the catalogue; a taken sku or barcode, a bad field, another
    // currency are refused with a clear 4xx.
    let err = w.till.create_product(&product("X", 1, None)).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    let err = w.merchant.create_product(&product("TEA-1", 1, None)).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("sku_taken")));
    let mut dup = product("NEW", 1, None);
    dup.barcode = Some("6900000000001".into());
    assert_eq!(w.merchant.create_product(&dup).await.unwrap_err().code(), Some("barcode_taken"));
    assert_eq!(
        w.merchant.create_product(&product("bad sku", 1, None)).await.unwrap_err().status(),
        Some(400)
    );
    assert_eq!(
        w.merchant.create_product(&product("NEG", 1, Some(-1))).await.unwrap_err().status(),
        Some(400)
    );
    let mut usd = product("USD-1", 1, None);
    usd.currency = "USD".into();
    assert_eq!(w.merchant.create_product(&usd).await.unwrap_err().code(), Some("currency_mismatch"));
    // A PATCH changes only what it names; a new stock level is an adjustment with its reason.
    let p = &first.data[0];
    let patch = api::UpdateProductRequest {
        price: Some(150),
        stock: Some(Some(7)),
        reason: Some("weekly count".into()),
        ..Default::default()
    };
    let after = w.merchant.update_product(&p.id, &patch).await.unwrap();
    assert_eq!((after.price, after.stock, after.name.as_str()), (150, Some(7), "Product TEA-0"));
    let moves = w.merchant.stock_movements(&p.id, &api::PageQuery::default()).await.unwrap();
    assert_eq!((moves.data[0].kind.as_str(), moves.data[0].delta), ("adjustment", -3));
    assert_eq!(moves.data[0].reason.as_deref(), Some("weekly count"));
    explained(&w, &p.id).await;
    // `null` stops tracking; untracked stock cannot be adjusted by hand.
    let untracked = api::UpdateProductRequest { stock: Some(None), ..Default::default() };
    let u = w.merchant.update_product(&first.data[1].id, &untracked).await.unwrap();
    assert_eq!(u.stock, None);
    let err = w.merchant.adjust_stock(&u.id, 5, "delivery").await.unwrap_err();
    assert_eq!(err.code(), Some("stock_untracked"));
    // Manual adjustments never take stock below zero.
    let a = w.merchant.adjust_stock(&p.id, 5, "delivery from the farm").await.unwrap();
    assert_eq!(a.stock, Some(12));
    assert_eq!(w.merchant.adjust_stock(&p.id, -13, "breakage").await.unwrap_err().status(), Some(400));
    assert_eq!(w.merchant.adjust_stock(&p.id, -2, "breakage").await.unwrap().stock, Some(10));
    // The most negative delta has no absolute value in i64: refused, not a panic (found by
    // schemathesis).
    for delta in [i64::MIN, i64::MAX, -1_000_000_001] {
        let err = w.merchant.adjust_stock(&p.id, delta, "fuzz").await.unwrap_err();
        assert_eq!((err.status(), err.code()), (Some(400), Some("invalid_request")), "{delta}");
    }
    explained(&w, &p.id).await;
}

async fn sales_price_from_the_catalogue_and_take_stock(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let tea = w.merchant.create_product(&product("TEA", 450, Some(5))).await.unwrap();
    let bun = w.merchant.create_product(&product("BUN", 300, None)).await.unwrap();
    let wallet = w.wallet(0).await;
    // `{sku, quantity}` lines are priced by the server; the amount may be left out.
    let code = wallet.payment_code().await.unwrap().code;
    let p = w
        .till
        .create_payment(&sale("s-1", 0, vec![line("TEA", 2), line("BUN", 1)], Some(&code)))
        .await
        .unwrap();
    assert_eq!((p.status.as_str(), p.amount), ("succeeded", 1200));
    assert_eq!(
        p.items[0],
        api::Item { sku: Some("TEA".into()), name: "Product TEA".into(), quantity: 2, unit_amount: 450 }
    );
    assert_eq!(stock(&w, &tea.id).await, Some(3));
    assert_eq!(stock(&w, &bun.id).await, None, "untracked stock stays untracked");
    let moves = w.merchant.stock_movements(&tea.id, &api::PageQuery::default()).await.unwrap();
    assert_eq!((moves.data[0].kind.as_str(), moves.data[0].delta), ("sale", -2));
    assert_eq!(moves.data[0].payment_id.as_deref(), Some(p.id.as_str()));
    assert_eq!(w.balance(0).await, 100_000 - 1200);
    // The same request again answers the same payment and takes nothing more.
    let again = w
        .till
        .create_payment(&sale("s-1", 0, vec![line("TEA", 2), line("BUN", 1)], Some(&code)))
        .await
        .unwrap();
    assert_eq!(again.id, p.id);
    assert_eq!(stock(&w, &tea.id).await, Some(3));
    // A given amount must equal the lines' total.
    let code = wallet.payment_code().await.unwrap().code;
    let err = w.till.create_payment(&sale("s-2", 999, vec![line("TEA", 1)], Some(&code))).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(400), Some("amount_mismatch")));
    // Selling more than is in stock is refused, naming the sku; no money moves and the
    // customer's code is not spent.
    let err = w
        .till
        .create_payment(&sale("s-3", 0, vec![line("BUN", 1), line("TEA", 4)], Some(&code)))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code(), sku_of(&err).as_deref()),
        (Some(409), Some("out_of_stock"), Some("TEA"))
    );
    assert_eq!(w.balance(0).await, 100_000 - 1200);
    let ok = w.till.create_payment(&sale("s-4", 450, vec![line("TEA", 1)], Some(&code))).await.unwrap();
    assert_eq!(ok.status, "succeeded");
    assert_eq!(stock(&w, &tea.id).await, Some(2));
    // An unknown or inactive product cannot be sold from the catalogue.
    let code = wallet.payment_code().await.unwrap().code;
    let err = w.till.create_payment(&sale("s-5", 0, vec![line("NOPE", 1)], Some(&code))).await.unwrap_err();
    assert_eq!((err.status(), sku_of(&err).as_deref()), (Some(400), Some("NOPE")));
    let off = api::UpdateProductRequest { active: Some(false), ..Default::default() };
    w.merchant.update_product(&bun.id, &off).await.unwrap();
    let err = w.till.create_payment(&sale("s-6", 0, vec![line("BUN", 1)], Some(&code))).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    // Lines given in full are taken as sent, as before; their sku still takes stock.
    let full =
        api::Item { sku: Some("TEA".into()), name: "Tea (promo)".into(), quantity: 1, unit_amount: 400 };
    let p = w.till.create_payment(&sale("s-7", 400, vec![full], Some(&code))).await.unwrap();
    assert_eq!((p.status.as_str(), p.items[0].unit_amount), ("succeeded", 400));
    assert_eq!(stock(&w, &tea.id).await, Some(1));
    explained(&w, &tea.id).await;
    w.assert_balanced().await;
}

async fn refunds_of_items_and_cancels_put_stock_back(db: Db) {
    let w = World::new(db, 1, 100_000).await;
    let tea = w.merchant.create_product(&product("TEA", 450, Some(10))).await.unwrap();
    let wallet = w.wallet(0).await;
    let code = wallet.payment_code().await.unwrap().code;
    let p = w.till.create_payment(&sale("r-1", 0, vec![line("TEA", 3)], Some(&code))).await.unwrap();
    assert_eq!(stock(&w, &tea.id).await, Some(7));
    // A refund of items is worth their price and puts them back.
    let items = vec![api::RefundItem { sku: "TEA".into(), quantity: 2 }];
    let req = api::CreateRefundRequest {
        out_refund_no: "rf-1".into(),
        amount: 0,
        reason: None,
        items: Some(items.clone()),
    };
    let r = w.merchant.refund_with(&p.id, &req).await.unwrap();
    assert_eq!(r.amount, 900);
    assert_eq!(stock(&w, &tea.id).await, Some(9));
    // Retried, it answers the same refund and puts nothing more back.
    assert_eq!(w.merchant.refund_with(&p.id, &req).await.unwrap().id, r.id);
    assert_eq!(stock(&w, &tea.id).await, Some(9));
    // No more units come back than were sold; a wrong amount or an unsold sku is refused.
    let too_many = api::CreateRefundRequest {
        out_refund_no: "rf-2".into(),
        amount: 0,
        reason: None,
        items: Some(vec![api::RefundItem { sku: "TEA".into(), quantity: 2 }]),
    };
    assert_eq!(w.merchant.refund_with(&p.id, &too_many).await.unwrap_err().status(), Some(400));
    let wrong = api::CreateRefundRequest {
        amount: 1,
        items: Some(vec![api::RefundItem { sku: "TEA".into(), quantity: 1 }]),
        ..too_many.clone()
    };
    assert_eq!(w.merchant.refund_with(&p.id, &wrong).await.unwrap_err().code(), Some("amount_mismatch"));
    let unsold = api::CreateRefundRequest {
        items: Some(vec![api::RefundItem { sku: "X".into(), quantity: 1 }]),
        ..too_many.clone()
    };
    assert_eq!(w.merchant.refund_with(&p.id, &unsold).await.unwrap_err().status(), Some(400));
    // A till cannot refund at all.
    assert_eq!(w.till.refund_with(&p.id, &req).await.unwrap_err().status(), Some(403));
    // A refund of money alone leaves the stock as it is.
    w.merchant.refund(&p.id, "rf-3", 100).await.unwrap();
    assert_eq!(stock(&w, &tea.id).await, Some(9));
    // Cancelling (reversing) a sale puts back every unit not yet returned.
    let code = wallet.payment_code().await.unwrap().code;
    let p2 = w.till.create_payment(&sale("r-2", 0, vec![line("TEA", 4)], Some(&code))).await.unwrap();
    assert_eq!(stock(&w, &tea.id).await, Some(5));
    let cancelled = w.till.cancel(&p2.id).await.unwrap();
    assert_eq!(cancelled.status, "refunded");
    assert_eq!(stock(&w, &tea.id).await, Some(9));
    explained(&w, &tea.id).await;
    w.assert_balanced().await;
}

async fn two_tills_race_for_the_last_unit(db: Db) {
    let w = World::new(db, 2, 100_000).await;
    let last = w.merchant.create_product(&product("LAST", 800, Some(1))).await.unwrap();
    let (a, b) = (w.wallet(0).await, w.wallet(1).await);
    let (ca, cb) = (a.payment_code().await.unwrap().code, b.payment_code().await.unwrap().code);
    let ra = sale("race-a", 0, vec![line("LAST", 1)], Some(&ca));
    let rb = sale("race-b", 0, vec![line("LAST", 1)], Some(&cb));
    let (x, y) = tokio::join!(w.till.create_payment(&ra), w.other_till.create_payment(&rb));
    let results = [x, y];
    let sold = results.iter().filter(|r| r.as_ref().is_ok_and(|p| p.status == "succeeded")).count();
    assert_eq!(sold, 1, "exactly one till sells the last unit: {results:?}");
    let refused = results.iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!((refused.code(), sku_of(refused).as_deref()), (Some("out_of_stock"), Some("LAST")));
    assert_eq!(stock(&w, &last.id).await, Some(0));
    assert_eq!(w.balance(0).await + w.balance(1).await, 200_000 - 800, "one customer paid, once");
    // The winner's till retries (its answer was lost): the same payment, not out_of_stock.
    let (winner, request) = if results[0].is_ok() { (&w.till, &ra) } else { (&w.other_till, &rb) };
    let again = winner.create_payment(request).await.unwrap();
    assert_eq!((again.status.as_str(), again.amount), ("succeeded", 800));
    assert_eq!(Some(&again.id), results.iter().find_map(|r| r.as_ref().ok()).map(|p| &p.id));
    explained(&w, &last.id).await;
    w.assert_balanced().await;
}

async fn a_dynamic_code_takes_stock_when_paid(db: Db) {
    let w = World::new(db, 2, 100_000).await;
    let cake = w.merchant.create_product(&product("CAKE", 2000, Some(1))).await.unwrap();
    // Shown but not yet paid: nothing is held back.
    let shown = w.till.create_payment(&sale("d-1", 0, vec![line("CAKE", 1)], None)).await.unwrap();
    assert_eq!((shown.status.as_str(), shown.amount), ("pending", 2000));
    assert_eq!(stock(&w, &cake.id).await, Some(1));
    let other = w.other_till.create_payment(&sale("d-2", 0, vec![line("CAKE", 1)], None)).await.unwrap();
    // The first customer pays: the unit goes.
    let first = w.wallet(0).await;
    let pay = |payload: &str| api::QrPayRequest {
        qr_payload: payload.into(),
        amount: None,
        pin: None,
        client_ref: None,
    };
    let paid = first.pay_qr(&pay(shown.qr_payload.as_deref().unwrap())).await.unwrap();
    assert_eq!(paid.status, "succeeded");
    assert_eq!(stock(&w, &cake.id).await, Some(0));
    // The second code can no longer be paid: refused naming the sku, no money moves, and
    // the payment stays pending for the till to cancel.
    let second = w.wallet(1).await;
    let err = second.pay_qr(&pay(other.qr_payload.as_deref().unwrap())).await.unwrap_err();
    assert_eq!((err.code(), sku_of(&err).as_deref()), (Some("out_of_stock"), Some("CAKE")));
    assert_eq!(w.balance(1).await, 100_000);
    assert_eq!(w.other_till.payment(&other.id, 0).await.unwrap().status, "pending");
    // A new dynamic code for it is refused at once.
    let err = w.till.create_payment(&sale("d-3", 0, vec![line("CAKE", 1)], None)).await.unwrap_err();
    assert_eq!(err.code(), Some("out_of_stock"));
    explained(&w, &cake.id).await;
    w.assert_balanced().await;
}

on_both!(
    catalogue_pages_searches_and_guards,
    sales_price_from_the_catalogue_and_take_stock,
    refunds_of_items_and_cancels_put_stock_back,
    two_tills_race_for_the_last_unit,
    a_dynamic_code_takes_stock_when_paid,
);
