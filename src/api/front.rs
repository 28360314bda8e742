//! What a connection hands each request to: the router, or, for the busiest route of a queued
//! sale, the waiting room's poll answered before routing.
//!
//! A crowd in a waiting room polls its tickets far more often than it does anything else, and
//! a poll is answered from memory, so the router's own work (matching the path, copying its
//! parameters, the matched route) is a large share of a poll's cost. [`Front`] recognises
//! `GET /api/v1/sales/{sale_id}/queue/{ticket}` by hand and answers it through the same edge
//! layer (load shedding, timeout, request id, counting under the route's template, logs) and
//! the same handler code as the routed route, which stays in the router and its documents.
//! Anything it does not recognise (a sale id that is not digits, `challenge`, another method)
//! goes to the router.

use std::{convert::Infallible, future::Future, sync::Arc};

use axum::{Router, extract::Request, http::Method, response::Response};
use futures::future::Either;
use tower::ServiceExt;

use super::{edge::EdgeLayer, queue, state::AppState};

/// The poll route's template, as the router names it (metrics and logs use it).
pub(crate) const POLL_ROUTE: &str = "/api/v1/sales/{sale_id}/queue/{ticket}";

/// The router, with the waiting room's poll in front of it on the public listener.
#[derive(Clone)]
pub struct Front {
    router: Router,
    polls: Option<Arc<Polls>>,
}

struct Polls {
    state: AppState,
    edge: EdgeLayer,
}

impl Front {
    /// `router` with polls answered before routing, through `edge` (the router's own layer).
    pub(crate) fn with_polls(router: Router, state: AppState, edge: EdgeLayer) -> Self {
        Self {
            router,
            polls: Some(Arc::new(Polls { state, edge })),
        }
    }

    /// The answer to `request`. Every other request costs what routing did before: one
    /// clone of the router (a reference count) and the router's own future.
    pub fn answer(
        &self,
        request: Request,
    ) -> impl Future<Output = Result<Response, Infallible>> + Send + use<> {
        match &self.polls {
            Some(polls) if request.method() == Method::GET && is_poll(request.uri().path()) => {
                let polls = polls.clone();
                Either::Left(Box::pin(async move { Ok(polls.answer(request).await) }))
            }
            _ => Either::Right(self.router.clone().oneshot(request)),
        }
    }
}

impl Polls {
    async fn answer(&self, request: Request) -> Response {
        let state = &self.state;
        self.edge
            .answer(POLL_ROUTE, request, |request| async move {
                Ok::<_, Infallible>(queue::answer_poll(state, request.uri().path()).await)
            })
            .await
    }
}

impl From<Router> for Front {
    fn from(router: Router) -> Self {
        Self {
            router,
            polls: None,
        }
    }
}

/// `/api/v1/sales/<digits>/queue/<ticket>`, where the ticket is one non-empty segment other
/// than `challenge` (the router answers that one, and anything else).
fn is_poll(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/sales/") else {
        return false;
    };
    let Some((sale, rest)) = rest.split_once('/') else {
        return false;
    };
    let Some(ticket) = rest.strip_prefix("queue/") else {
        return false;
    };
    (1..=20).contains(&sale.len())
        && sale.bytes().all(|b| b.is_ascii_digit())
        && !ticket.is_empty()
        && !ticket.contains('/')
        && ticket != "challenge"
}

#[cfg(test)]
mod tests {
    use super::is_poll;

    #[test]
    fn only_the_poll_route_is_answered_before_routing() {
        assert!(is_poll("/api/v1/sales/42/queue/AQGB-_x"));
        for other in [
            "/api/v1/sales/42/queue/challenge",
            "/api/v1/sales/42/queue",
            "/api/v1/sales/42/queue/",
            "/api/v1/sales/x/queue/t",
            "/api/v1/sales//queue/t",
            "/api/v1/sales/42/queue/t/more",
            "/api/v1/sales/42/buy",
            "/api/v1/sales/123456789012345678901/queue/t",
            "/healthz",
        ] {
            assert!(!is_poll(other), "{other}");
        }
    }
}
