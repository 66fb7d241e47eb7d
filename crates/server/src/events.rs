//! The merchant's live feed: Server-Sent Events read from the outbox, so only what
//! committed is announced, and payments made through any node show up: a commit on this
//! node wakes the feed at once, one on another node through PostgreSQL LISTEN/NOTIFY, and
//! a poll every half second covers a lost notification.
//!
//! A feed is the key's, not the merchant's: a terminal key's carries its own till's
//! payments and refunds only, and each read of the outbox checks that the key is still
//! live, so the feed of a revoked or rotated-out key ends. It must never hand over an
//! event read after its key ended.

use crate::AppState;
use crate::auth::MerchantCaller;
use crate::error::ApiResult;
use crate::util::now;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::convert::Infallible;
use std::time::Duration;

/// `GET /v1/events/stream`: `Last-Event-ID` (an event's `id`, `TX.SEQ`) resumes after that event.
#[utoipa::path(
    operation_id = "events_stream",
    get,
    path = "/v1/events/stream",
    tag = "merchant",
    summary = "The live feed.",
    responses((status = 200, description = "Server-Sent Events, one per payment or refund of the merchant", body = String, content_type = "text/event-stream")),
    security(("merchant_signature" = [])),
)]
pub async fn stream(
    State(state): State<AppState>,
    Extension(caller): Extension<MerchantCaller>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let resume =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(saoma_store::EventCursor::parse);
    let start = match resume {
        Some(cursor) => cursor,
        None => state.store.last_event_cursor().await?,
    };
    let caller_state = state.clone();
    let s = futures::stream::unfold((start, Vec::new()), move |(mut last, mut queue)| {
        let state = state.clone();
        let caller = caller.clone();
        async move {
            loop {
                if let Some(row) = queue.pop() {
                    return Some((Ok(frame(&row)), (last, queue)));
                }
                let notified = state.changed.notified();
                let scope = (caller.merchant_id.as_str(), caller.terminal_id.as_deref());
                match state.store.feed_events(&caller.key_id, scope, last, 100, &now().1).await {
                    // The key was revoked or rotated out: the feed ends here.
                    Ok(None) => return None,
                    Ok(Some(rows)) if !rows.is_empty() => {
                        last = rows.last().map_or(last, saoma_store::EventCursor::of);
                        queue = rows.into_iter().rev().collect();
                    }
                    Ok(Some(_)) => {
                        let _ = tokio::time::timeout(Duration::from_millis(500), notified).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Live feed could not read the outbox.");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    });
    // The feed ends when the server shuts down, so a graceful stop does not wait on it;
    // the client reconnects elsewhere with Last-Event-ID.
    let stopping = caller_state.clone();
    let s = futures::StreamExt::take_until(s, Box::pin(async move { stopping.stopping().await }));
    Ok(Sse::new(s).keep_alive(KeepAlive::default()))
}

/// The frame of one outbox event, its cursor as the frame's id. An event whose data does
/// not parse is corrupt: it is sent as an `unreadable` frame naming it (and logged), never
/// as an empty object, and the feed goes on, so a client resuming from its cursor is not
/// stuck before it.
fn frame(row: &saoma_store::EventRow) -> Event {
    let cursor = saoma_store::EventCursor::of(row).to_string();
    let sent = crate::views::event(row).map_err(|e| e.to_string()).and_then(|body| {
        Event::default().id(cursor.clone()).event(row.kind.clone()).json_data(body).map_err(|e| e.to_string())
    });
    sent.unwrap_or_else(|e| {
        tracing::error!(error = %e, event = %row.id, "Live feed met a corrupt event.");
        let body = serde_json::json!({"id": row.id, "type": row.kind, "created_at": row.created_at,
            "error": {"code": "internal_error", "message": "this event's data could not be read"}});
        Event::default().id(cursor).event("unreadable").data(body.to_string())
    })
}
