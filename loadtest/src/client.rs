//! One keep-alive HTTP/1.1 connection per worker, driven by hyper directly: no pool, no lock
//! shared between workers, so the load generator stays cheap per request.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A connection to the target.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

/// What to send.
#[derive(Clone)]
pub struct RequestTemplate {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// `Host` header value.
    pub host: HeaderValue,
    /// Body (empty for GET).
    pub body: Bytes,
}

impl Conn {
    /// Opens a connection (TCP_NODELAY: requests are small and latency matters).
    ///
    /// # Errors
    /// The target refused or the handshake failed.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole answer.
    ///
    /// # Errors
    /// The connection broke.
    pub async fn send(
        &mut self,
        t: &RequestTemplate,
        authorization: Option<&HeaderValue>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut req = Request::builder()
            .method(t.method.clone())
            .uri(t.path.as_str())
            .header(header::HOST, t.host.clone());
        if !t.body.is_empty() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a.clone());
        }
        let req = req.body(Full::new(t.body.clone()))?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}
