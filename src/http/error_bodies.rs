//! JSON bodies for the answers hyper writes on its own.
//!
//! When a request cannot even be parsed (bad framing, a URI or headers too
//! large), hyper answers 400, 414 or 431 itself, with an empty body, and closes the
//! connection; no handler of ours runs. Our own handlers never send an empty 4xx,
//! so a response head that is exactly such an answer can only be hyper's: this
//! wrapper around the connection's socket recognises it on its way out and gives
//! it the same JSON error shape as every other error.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::responses::ErrorBody;

pub struct ErrorBodies<T> {
    inner: T,
    /// A rewritten answer still being written.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ErrorBodies<T> {
    pub fn new(inner: T) -> ErrorBodies<T> {
        ErrorBodies {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The JSON answer for a bare status line hyper wrote, if it is one of its own.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let (code, error) = if head.starts_with(b"HTTP/1.1 400 ") {
        ("BAD_REQUEST", "the request is not valid HTTP")
    } else if head.starts_with(b"HTTP/1.1 414 ") {
        ("URI_TOO_LONG", "the request's URI is too long")
    } else if head.starts_with(b"HTTP/1.1 431 ") {
        (
            "HEADERS_TOO_LARGE",
            "the request has too many headers, or headers too large",
        )
    } else {
        return None;
    };
    let text = std::str::from_utf8(head).ok()?;
    let headers = text.strip_suffix("\r\n\r\n")?;
    if !headers
        .lines()
        .any(|l| l.eq_ignore_ascii_case("content-length: 0"))
    {
        return None;
    }
    let body = ErrorBody {
        error: error.into(),
        code,
        request_id: None,
        details: Default::default(),
    };
    let body = serde_json::to_string(&body).ok()?;
    let mut out = String::with_capacity(headers.len() + body.len() + 64);
    for line in headers.split("\r\n") {
        if line.eq_ignore_ascii_case("content-length: 0") {
            out.push_str(&format!(
                "content-length: {}\r\ncontent-type: application/json",
                body.len()
            ));
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> ErrorBodies<T> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ErrorBodies<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ErrorBodies<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = rewrite(buf) {
            this.pending = answer;
            // The caller's bytes are taken; ours go out now or on the next poll.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    /// Vectored, like the socket: otherwise hyper copies every response body
    /// into its own buffer before writing it (20 clients fetching a 14.5 MB seat
    /// map cost 290 MB of copies), where vectored writes send the shared bytes.
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper's own answers are a head alone; anything with more is ours.
        match bufs.iter().filter(|b| !b.is_empty()).count() {
            0 => Poll::Ready(Ok(0)),
            1 => {
                let one = bufs.iter().find(|b| !b.is_empty()).expect("counted");
                self.poll_write(cx, one)
            }
            _ => {
                let this = self.get_mut();
                ready!(this.poll_pending(cx))?;
                Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bare_answers_get_a_json_body_and_others_pass_untouched() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let rewritten = String::from_utf8(rewrite(bare).unwrap()).unwrap();
        let (head, body) = rewritten.split_once("\r\n\r\n").unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "HEADERS_TOO_LARGE");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("content-type: application/json"));

        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 52\r\n\r\n";
        assert!(rewrite(ours).is_none(), "an answer with a body is ours");
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
