//! The outermost layer every request passes, in one cheap step:
//!
//! * **Load shedding.** More than `SECKILL_HTTP_MAX_IN_FLIGHT` requests at once: the rest are
//!   answered 503 at once.
//! * **Timeout.** A request still running after `SECKILL_HTTP_REQUEST_TIMEOUT_SECS` is
//!   answered 503. The clock is read and the timer armed only when the handler does not answer
//!   in its first poll: an answer from memory (sold out, rate limited, a probe) costs neither.
//! * **Request id.** Taken from the caller or minted, and answered in `X-Request-Id`.
//! * **Counting** by route and status (bounded labels: route templates, not paths).
//! * **Logs.** A tracing span (method, route, request id, status, and the order id once the
//!   buy path knows it) puts those fields on every log line inside the request, and costs
//!   about as much as the rest of a sold-out answer; so on the public listener only one
//!   request in `SECKILL_LOG_SPAN_EVERY` gets one, and the admin listener spans every request.
//!   Without a span, what an operator needs is logged here with the same fields: error answers
//!   (debug) and requests slower than [`SLOW`] (a warning, throttled per route).

use std::{
    convert::Infallible,
    future::Future,
    pin::{Pin, pin},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request},
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use prometheus::{IntCounter, IntCounterVec};
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use super::{ApiError, request_id};
use crate::observe::log::{REPEAT_EVERY, Throttle};

/// A request slower than this is logged as a warning (at most one line per route per 10 s).
pub(crate) const SLOW: Duration = Duration::from_secs(1);

/// How the layer behaves.
#[derive(Clone, Debug)]
pub(crate) struct EdgeSettings {
    /// Requests served at once; more are shed.
    pub max_in_flight: usize,
    /// Longest a request may run.
    pub timeout: Duration,
    /// One request in this many gets a span (1: every one).
    pub span_every: u64,
    /// A request slower than this is logged.
    pub slow: Duration,
}

/// The layer (see the module's documentation).
#[derive(Clone)]
pub(crate) struct EdgeLayer {
    shared: Arc<Shared>,
}

struct Shared {
    settings: EdgeSettings,
    requests: IntCounterVec,
    /// Labelled counters resolved once per route and status, found by the address of the
    /// route's template (the router keeps each template in one place for its lifetime).
    counters: RwLock<Vec<(usize, u16, IntCounter)>>,
    in_flight: AtomicUsize,
    seen: AtomicU64,
    slow_lines: Throttle,
}

impl EdgeLayer {
    /// A layer counting into `requests` (labels: route, status).
    pub fn new(settings: EdgeSettings, requests: IntCounterVec) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings: EdgeSettings {
                    span_every: settings.span_every.max(1),
                    max_in_flight: settings.max_in_flight.max(1),
                    ..settings
                },
                requests,
                counters: RwLock::default(),
                in_flight: AtomicUsize::new(0),
                seen: AtomicU64::new(0),
                slow_lines: Throttle::default(),
            }),
        }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;
    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service the layer wraps around the router.
#[derive(Clone)]
pub(crate) struct Edge<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            let route = req.extensions().get::<MatchedPath>().cloned();
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            Ok(shared.handle(route, req, |req| inner.oneshot(req)).await)
        })
    }
}

impl EdgeLayer {
    /// Answers `req` with `run` as the layer answers a routed request of `route` (for a route
    /// answered before routing, see [`super::front`]).
    pub(crate) async fn answer<F, Fut>(&self, route: &str, req: Request, run: F) -> Response
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, Infallible>>,
    {
        self.shared.handle(route, req, run).await
    }
}

/// Holds one of the in-flight places until dropped.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    fn place(&self) -> Option<Place<'_>> {
        let before = self.in_flight.fetch_add(1, Ordering::Relaxed);
        let place = Place(&self.in_flight);
        (before < self.settings.max_in_flight).then_some(place)
    }

    fn spans_next(&self) -> bool {
        let every = self.settings.span_every;
        every == 1
            || self
                .seen
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(every)
    }

    async fn handle<F, Fut>(&self, route: &str, req: Request, run: F) -> Response
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Result<Response, Infallible>>,
    {
        let request_id = request_id::of(req.headers());
        let method = req.method().clone();
        let span = self.spans_next().then(|| {
            tracing::info_span!(
                "request",
                method = %method,
                route,
                request_id = request_id.to_str().unwrap_or_default(),
                status = tracing::field::Empty,
                order_id = tracing::field::Empty,
            )
        });
        let (mut response, took) = match self.place() {
            None => (
                ApiError::Unavailable("the service is overloaded; retry shortly".into())
                    .into_response(),
                None,
            ),
            Some(_place) => {
                let run = run(req);
                match &span {
                    Some(span) => self.within_time(run.instrument(span.clone())).await,
                    None => self.within_time(run).await,
                }
            }
        };
        let status = response.status();
        if let Some(span) = &span {
            span.record("status", status.as_u16());
        }
        self.log(&method, route, &request_id, status, took);
        response
            .headers_mut()
            .insert(request_id::HEADER, request_id);
        self.count(route, status);
        response
    }

    /// The handler's answer, or a 503 once the timeout passes; and how long it took when it
    /// did not answer in its first poll (`None`: it did, and the clock was never read).
    async fn within_time(
        &self,
        run: impl Future<Output = Result<Response, Infallible>>,
    ) -> (Response, Option<Duration>) {
        let mut run = pin!(run);
        let mut timer: Option<(Instant, Pin<Box<tokio::time::Sleep>>)> = None;
        let timeout = self.settings.timeout;
        let answer = std::future::poll_fn(|cx| {
            if let Poll::Ready(Ok(response)) = run.as_mut().poll(cx) {
                return Poll::Ready(Some(response));
            }
            let (_, sleep) = timer.get_or_insert_with(|| {
                let now = Instant::now();
                (
                    now,
                    Box::pin(tokio::time::sleep_until((now + timeout).into())),
                )
            });
            sleep.as_mut().poll(cx).map(|()| None)
        })
        .await;
        let took = timer.map(|(started, _)| started.elapsed());
        let response = answer.unwrap_or_else(|| {
            ApiError::Unavailable("the request timed out".into()).into_response()
        });
        (response, took)
    }

    fn log(
        &self,
        method: &Method,
        route: &str,
        request_id: &axum::http::HeaderValue,
        status: StatusCode,
        took: Option<Duration>,
    ) {
        let rid = request_id.to_str().unwrap_or_default();
        if status.is_client_error() || status.is_server_error() {
            // Debug only: a flood of 4xx must not flood the log. Failures that need a human
            // are logged where they happen.
            tracing::debug!(%method, route, request_id = rid, status = status.as_u16(), "answered with an error");
        }
        if let Some(took) = took
            && took >= self.settings.slow
            && let Some(held_back) = self.slow_lines.allow(route, REPEAT_EVERY)
        {
            tracing::warn!(
                %method,
                route,
                request_id = rid,
                status = status.as_u16(),
                took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                held_back,
                "slow request (held_back: slower ones on this route since the last such line)"
            );
        }
    }

    fn count(&self, route: &str, status: StatusCode) {
        let key = (route.as_ptr() as usize, status.as_u16());
        let counters = self.counters.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, counter)) = counters.iter().find(|(r, c, _)| (*r, *c) == key) {
            counter.inc();
            return;
        }
        drop(counters);
        let counter = self
            .requests
            .with_label_values(&[route, status_label(status)]);
        counter.inc();
        let mut counters = self.counters.write().unwrap_or_else(|e| e.into_inner());
        if counters.len() < 256 && !counters.iter().any(|(r, c, _)| (*r, *c) == key) {
            counters.push((key.0, key.1, counter));
        }
    }
}

fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        409 => "409",
        410 => "410",
        422 => "422",
        428 => "428",
        429 => "429",
        500 => "500",
        503 => "503",
        s if s < 300 => "2xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests;
