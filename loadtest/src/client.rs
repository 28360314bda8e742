//! One keep-alive HTTP/1.1 connection per worker, driven by hyper directly: no pool, no lock
//! shared between workers, so the load generator stays cheap per request. (The crowd of
//! `--queue` shares a few of them through `crowd::pool`.)

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::errors::ErrorCause;

/// A connection to the target.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

/// What to send.
#[derive(Clone)]
pub(crate) struct RequestTemplate {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// `Host` header value.
    pub host: HeaderValue,
    /// Body (empty for GET).
    pub body: Bytes,
}

/// One answer, with the headers the load generator acts on.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
    /// `Retry-After` in seconds, when present and numeric.
    pub retry_after: Option<Duration>,
    /// `Idempotent-Replayed: true`: the server answered a retry with its first order.
    pub replayed: bool,
}

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The TCP connection could not be opened.
    #[error("connecting: {0}")]
    Connect(#[source] std::io::Error),
    /// The HTTP/1.1 handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[source] hyper::Error),
    /// The connection broke while the request was under way.
    #[error("connection broken: {0}")]
    Broken(#[source] hyper::Error),
    /// The request could not be built (a header value the `http` crate refuses).
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
}

impl ClientError {
    /// The cause counted in the summary.
    pub(crate) fn cause(&self) -> ErrorCause {
        match self {
            ClientError::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                ErrorCause::ConnectRefused
            }
            ClientError::Connect(_) | ClientError::Handshake(_) => ErrorCause::ConnectFailed,
            ClientError::Broken(_) | ClientError::Request(_) => ErrorCause::ConnectionBroken,
        }
    }
}

impl Conn {
    /// Opens a connection (TCP_NODELAY: requests are small and latency matters).
    ///
    /// # Errors
    /// The target refused or the handshake failed.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<Self, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(ClientError::Connect)?;
        stream.set_nodelay(true).map_err(ClientError::Connect)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ClientError::Handshake)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole answer.
    ///
    /// # Errors
    /// The connection broke.
    pub(crate) async fn send(
        &mut self,
        t: &RequestTemplate,
        authorization: Option<&HeaderValue>,
        idempotency_key: Option<&HeaderValue>,
    ) -> Result<Answer, ClientError> {
        let auth = authorization.map(|a| (header::AUTHORIZATION.as_str(), a));
        let key = idempotency_key.map(|k| ("idempotency-key", k));
        let headers = [auth, key];
        self.send_with(t, headers.iter().flatten().copied()).await
    }

    /// Sends one request with `headers` (name, value) and reads the whole answer.
    ///
    /// # Errors
    /// The connection broke, or a header name is not one.
    pub(crate) async fn send_with<'h>(
        &mut self,
        t: &RequestTemplate,
        headers: impl Iterator<Item = (&'static str, &'h HeaderValue)>,
    ) -> Result<Answer, ClientError> {
        let mut req = Request::builder()
            .method(t.method.clone())
            .uri(t.path.as_str())
            .header(header::HOST, t.host.clone());
        if !t.body.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            req = req.header(name, value.clone());
        }
        let req = req.body(Full::new(t.body.clone()))?;
        self.sender.ready().await.map_err(ClientError::Broken)?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(ClientError::Broken)?;
        let status = resp.status().as_u16();
        let headers = resp.headers();
        let retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0)));
        let replayed = headers
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(ClientError::Broken)?
            .to_bytes();
        Ok(Answer {
            status,
            body,
            retry_after,
            replayed,
        })
    }
}
