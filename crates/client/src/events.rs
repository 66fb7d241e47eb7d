//! The merchant's live feed (`GET /v1/events/stream`) read as Server-Sent Events.

use crate::{Client, ClientResult};
use std::time::Duration;

/// One event of the feed.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    /// The position to resume after (`Last-Event-ID`).
    pub id: String,
    /// `payment.succeeded`, `refund.succeeded`, ...
    pub kind: String,
    /// The event as JSON: `{id, type, created_at, data}` (`saoma_api::Event`, whose `data`
    /// is free-form by type). Kept as JSON so a frame that is not an event still shows.
    pub body: serde_json::Value,
}

/// An open feed.
pub struct EventFeed {
    response: reqwest::Response,
    buffer: String,
}

impl Client {
    /// Opens the live feed, from now or after `last_event_id`.
    pub async fn event_feed(&self, last_event_id: Option<&str>) -> ClientResult<EventFeed> {
        let mut req = self.request("GET", "/v1/events/stream", None).timeout(Duration::from_secs(24 * 3600));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let response = req.send().await?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.text().await.unwrap_or_default();
            return Err(crate::error_of(status, body));
        }
        Ok(EventFeed { response, buffer: String::new() })
    }
}

impl EventFeed {
    /// The next event; `None` when the server closed the feed. Keep-alive comments are
    /// skipped.
    pub async fn next(&mut self) -> ClientResult<Option<FeedEvent>> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_frame(&frame) {
                    return Ok(Some(event));
                }
                continue;
            }
            match self.response.chunk().await? {
                Some(bytes) => self.buffer.push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
                None => return Ok(None),
            }
        }
    }
}

fn parse_frame(frame: &str) -> Option<FeedEvent> {
    let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
    for line in frame.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = value.to_string(),
            "event" => kind = value.to_string(),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    let body = serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data));
    Some(FeedEvent { id, kind, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_comments_skip() {
        assert!(parse_frame(": keep-alive\n\n").is_none());
        let e = parse_frame("id: 0.7\nevent: payment.succeeded\ndata: {\"id\":\"evt_1\"}\n\n").unwrap();
        assert_eq!((e.id.as_str(), e.kind.as_str()), ("0.7", "payment.succeeded"));
        assert_eq!(e.body["id"], "evt_1");
    }
}
