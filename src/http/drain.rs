//! Early answers that keep the connection honest.
//!
//! Many answers come before the request's body has been read: a 413 for a body
//! declared too large, a 401 for a wrong token, a 429. HTTP/1.1 then leaves the
//! server two honest choices: read the rest of the body, so the connection can
//! carry the next request, or say `Connection: close`. Left to itself, hyper
//! reads what has already arrived and, if more is due, closes without saying so:
//! the client's next request on that connection fails ("server disconnected"),
//! and a client still sending a large body gets a reset that can swallow the
//! answer. So what a handler leaves unread is read here and thrown away, within a
//! bound of size and time; past the bound, the answer says `Connection: close`.

use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;

/// The most of an unread body that is read and discarded.
pub const MAX_DRAIN_BYTES: u64 = 8 * 1024 * 1024;
/// How long reading it may take.
pub const MAX_DRAIN_TIME: Duration = Duration::from_secs(3);

/// A body the handler reads through, and whose unread rest this middleware can
/// take back afterwards. `None` once the body has ended.
type Shared = Arc<Mutex<Option<BodyDataStream>>>;

/// What to do about a request's body before its handler runs.
fn plan(headers: &HeaderMap) -> Plan {
    let chunked = headers.contains_key(TRANSFER_ENCODING);
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if !chunked && declared.is_none_or(|n| n == 0) {
        return Plan::NoBody;
    }
    // A client that waits for "100 Continue" has sent nothing yet: closing is
    // cheaper for both than inviting a body only to discard it.
    if headers.contains_key(EXPECT) || declared.is_some_and(|n| n > MAX_DRAIN_BYTES) {
        return Plan::CloseIfUnread;
    }
    Plan::DrainIfUnread
}

#[derive(Debug, PartialEq, Eq)]
enum Plan {
    NoBody,
    DrainIfUnread,
    CloseIfUnread,
}

pub async fn finish_body(req: Request, next: Next) -> Response {
    let plan = plan(req.headers());
    if plan == Plan::NoBody {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let shared: Shared = Arc::new(Mutex::new(Some(body.into_data_stream())));
    let reader = shared.clone();
    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        let mut guard = reader.lock().unwrap_or_else(|e| e.into_inner());
        let Some(stream) = guard.as_mut() else {
            return Poll::Ready(None);
        };
        let next = stream.poll_next_unpin(cx);
        if matches!(next, Poll::Ready(None | Some(Err(_)))) {
            *guard = None;
        }
        next
    }));
    let mut response = next.run(Request::from_parts(parts, body)).await;
    let unread = shared.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some(unread) = unread else {
        return response;
    };
    let drained = plan == Plan::DrainIfUnread && drain(unread).await;
    if !drained {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads and discards the rest of a body; whether it ended within the bounds.
async fn drain(mut body: BodyDataStream) -> bool {
    let read = async {
        let mut total = 0u64;
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { return false };
            total += chunk.len() as u64;
            if total > MAX_DRAIN_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(MAX_DRAIN_TIME, read)
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    axum::http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn bodies_within_the_bound_are_drained_and_the_rest_closed() {
        assert_eq!(plan(&headers(&[])), Plan::NoBody);
        assert_eq!(plan(&headers(&[("content-length", "0")])), Plan::NoBody);
        assert_eq!(
            plan(&headers(&[("content-length", "2000000")])),
            Plan::DrainIfUnread
        );
        assert_eq!(
            plan(&headers(&[("transfer-encoding", "chunked")])),
            Plan::DrainIfUnread
        );
        assert_eq!(
            plan(&headers(&[("content-length", "9000000")])),
            Plan::CloseIfUnread
        );
        assert_eq!(
            plan(&headers(&[
                ("content-length", "20"),
                ("expect", "100-continue")
            ])),
            Plan::CloseIfUnread
        );
    }
}
