//! Cursor pagination, the same for every list: `?limit=` (1-100) and `?cursor=`, answered
//! `{"data": [...], "next_cursor": ...}`.
//!
//! A list is sorted on a unique key (an id, or a time and an id), and a cursor is the key of the
//! last item of the page, so the next page starts strictly after it. Rows that arrive
//! while a client pages sort before its cursor in a newest-first list (the client sees
//! them on its next first page) and after it in an oldest-first list (it reaches them):
//! no row is shown twice and none that was there is skipped. `next_cursor` is null on the
//! last page only. Cursors are opaque to clients; one made by another list, or mangled,
//! is refused with a 400, never answered with a wrong page. This module must never read
//! the database: it only shapes what the store's keyset queries take and give.

use crate::error::{ApiError, ApiResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The largest page any list answers.
pub const LIMIT_MAX: i64 = 100;

/// Checks `?limit=`: 1 to [`LIMIT_MAX`], `default` when absent.
pub fn limit(given: Option<i64>, default: i64) -> ApiResult<i64> {
    let limit = given.unwrap_or(default);
    if !(1..=LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("limit must be 1-{LIMIT_MAX}")));
    }
    Ok(limit)
}

/// A list's cursor, tagged with the list it belongs to.
pub struct Cursor {
    list: &'static str,
}

impl Cursor {
    /// The cursor of the list named `list` (a short tag written into every cursor).
    pub const fn of(list: &'static str) -> Cursor {
        Cursor { list }
    }

    /// Reads `?cursor=` into the `N` key parts of the last item already seen.
    pub fn read<const N: usize>(&self, cursor: Option<&str>) -> ApiResult<Option<[String; N]>> {
        let Some(text) = cursor else { return Ok(None) };
        let bad = || ApiError::invalid("cursor", "cursor is not one this list handed out");
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let mut parts: Vec<String> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if parts.len() != N + 1 || parts.remove(0) != self.list {
            return Err(bad());
        }
        parts.try_into().map(Some).map_err(|_| bad())
    }

    /// The cursor after an item with these key parts.
    fn write(&self, key: &[&str]) -> ApiResult<String> {
        let mut parts = vec![self.list];
        parts.extend_from_slice(key);
        Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&parts).map_err(ApiError::internal)?))
    }

    /// Cuts `rows` (fetched with a limit of `limit + 1`) to a page of `limit`, and names
    /// the cursor of the next page when there is one.
    pub fn page<T>(
        &self,
        mut rows: Vec<T>,
        limit: i64,
        key: impl Fn(&T) -> Vec<&str>,
    ) -> ApiResult<(Vec<T>, Option<String>)> {
        let limit = usize::try_from(limit).map_err(ApiError::internal)?;
        if rows.len() <= limit {
            return Ok((rows, None));
        }
        rows.truncate(limit);
        let next = rows.last().map(|last| self.write(&key(last))).transpose()?;
        Ok((rows, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: Cursor = Cursor::of("t");

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let (page, next) =
            LIST.page(vec![("a", "1"), ("b", "2"), ("c", "3")], 2, |r| vec![r.0, r.1]).unwrap();
        assert_eq!(page.len(), 2);
        let next = next.expect("a third row exists");
        assert_eq!(LIST.read::<2>(Some(&next)).unwrap(), Some(["b".to_string(), "2".to_string()]));
        assert!(LIST.read::<1>(Some(&next)).is_err(), "wrong shape");
        assert!(Cursor::of("u").read::<2>(Some(&next)).is_err(), "another list's cursor");
        assert!(LIST.read::<2>(Some("not a cursor")).is_err());
        assert_eq!(LIST.read::<2>(None).unwrap(), None);
        let (_, last) = LIST.page(vec![("a", "1")], 2, |r| vec![r.0, r.1]).unwrap();
        assert_eq!(last, None, "the last page has no next cursor");
        assert!(limit(Some(0), 20).is_err() && limit(Some(101), 20).is_err());
        assert_eq!(limit(None, 20).unwrap(), 20);
    }
}
