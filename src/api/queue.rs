//! `/api/v1/sales/{id}/queue`: a queued sale's waiting room. Join (with a proof of work when
//! the sale asks for one), then poll the ticket as `Retry-After` says until admitted; buy with
//! the admission token in `X-Admission-Token`.

use axum::{
    Json,
    body::Bytes,
    extract::{Request, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiError,
    error::ApiResult,
    extract::{ApiPath, Buyer},
};
use crate::{
    api::state::AppState,
    buy::waiting_room::{ChallengeOut, QueueAnswer, ticket::MAX_TICKET_LEN},
    domain::FieldError,
};

/// Waiting-room routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join_queue))
        .routes(routes!(challenge))
        .routes(routes!(poll_ticket))
}

/// A solved proof of work, sent with the join when the sale asks for one.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    /// The challenge from `GET .../queue/challenge`.
    #[schema(max_length = 256)]
    challenge: Option<String>,
    /// A decimal nonce such that SHA-256 of `challenge:nonce` starts with the sale's
    /// `pow_bits` zero bits.
    #[schema(max_length = 32)]
    nonce: Option<String>,
}

/// The answer with its `Retry-After`.
fn with_retry(answer: QueueAnswer) -> Response {
    let retry_after = HeaderValue::from(answer.retry_after_secs);
    let json = HeaderValue::from_static("application/json");
    let headers = [
        (header::CONTENT_TYPE, json),
        (header::RETRY_AFTER, retry_after),
    ];
    (headers, answer.to_json()).into_response()
}

#[utoipa::path(
    post,
    path = "/api/v1/sales/{sale_id}/queue",
    tag = "buyers",
    description = "Joins a queued sale's waiting room and answers a ticket. Joining again answers the same ticket and place. Joins before the start form the pre-queue, drawn in random order at the start; later joins queue in arrival order. Poll the ticket after `Retry-After` seconds.",
    params(("sale_id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64)),
    request_body(content = Option<JoinBody>, description = "empty, or the solved challenge when the sale's `pow_bits` > 0"),
    responses(
        (status = 200, description = "the ticket and where it stands (`sold_out` without a ticket when nothing is left)", body = QueueAnswer,
            headers(("Retry-After" = String, description = "seconds until the next poll"))),
        (status = 401, description = "no or bad buyer token (`unauthorized`)", body = super::doc::ErrorDoc),
        (status = 403, description = "`challenge_required`, `challenge_failed`", body = super::doc::ErrorDoc),
        (status = 404, description = "no such sale (`not_found`)", body = super::doc::ErrorDoc),
        (status = 409, description = "`queue_not_used` (an open sale: buy directly), `queue_not_open` (before the queue opens)", body = super::doc::ErrorDoc),
        (status = 410, description = "the sale has ended (`ended`)", body = super::doc::ErrorDoc),
        (status = 422, description = "a body that is not the JSON above (`invalid_json`, `invalid_field`)", body = super::doc::ErrorDoc),
        (status = 429, description = "the buyer's bucket is empty (`rate_limited`)", body = super::doc::ErrorDoc,
            headers(("Retry-After" = String, description = "seconds"))),
        (status = 503, description = "Redis or MySQL unavailable (`stock_unavailable`, `database_unavailable`, `unavailable`)", body = super::doc::ErrorDoc),
    ),
    security(("buyerToken" = []))
)]
async fn join_queue(
    State(state): State<AppState>,
    ApiPath(sale_id): ApiPath<u64>,
    Buyer(user): Buyer,
    body: Bytes,
) -> ApiResult<Response> {
    state
        .buy
        .gates()
        .check_user(user.as_ref())
        .map_err(|r| ApiError::RateLimited {
            retry_after: r.retry_after,
        })?;
    let body: JoinBody = if body.iter().all(u8::is_ascii_whitespace) {
        JoinBody::default()
    } else {
        crate::domain::json::parse::<Option<JoinBody>>(&body)?.unwrap_or_default()
    };
    let solution = body.challenge.as_deref().zip(body.nonce.as_deref());
    let answer = state.queue.join(sale_id, &user, solution).await?;
    Ok(with_retry(answer))
}

#[utoipa::path(
    get,
    path = "/api/v1/sales/{sale_id}/queue/challenge",
    tag = "buyers",
    description = "A proof-of-work challenge for joining a queued sale whose `pow_bits` > 0: find a decimal nonce such that SHA-256 of `challenge:nonce` starts with `bits` zero bits, and send both with the join. Valid for this buyer and sale for `expires_in_secs`.",
    params(("sale_id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64)),
    responses(
        (status = 200, description = "the challenge", body = ChallengeOut),
        (status = 401, description = "no or bad buyer token (`unauthorized`)", body = super::doc::ErrorDoc),
        (status = 404, description = "no such sale (`not_found`)", body = super::doc::ErrorDoc),
        (status = 409, description = "an open sale (`queue_not_used`)", body = super::doc::ErrorDoc),
        (status = 422, description = "a sale id that is not a number from 1 to 2^53 - 1 (`invalid_field`)", body = super::doc::ErrorDoc),
        (status = 503, description = "MySQL unavailable (`database_unavailable`)", body = super::doc::ErrorDoc),
    ),
    security(("buyerToken" = []))
)]
async fn challenge(
    State(state): State<AppState>,
    ApiPath(sale_id): ApiPath<u64>,
    Buyer(user): Buyer,
) -> ApiResult<Json<ChallengeOut>> {
    Ok(Json(state.queue.challenge(sale_id, user.as_ref()).await?))
}

#[utoipa::path(
    get,
    path = "/api/v1/sales/{sale_id}/queue/{ticket}",
    tag = "buyers",
    description = "Where a ticket stands: `waiting` (position, places ahead, now serving, estimated wait), `admitted` (with the admission token for `X-Admission-Token`), `sold_out` or `expired`. Answered from memory by any instance; poll again after `Retry-After` seconds.",
    params(
        ("sale_id" = u64, Path, description = "sale id", minimum = 1, maximum = 9_007_199_254_740_991_i64),
        ("ticket" = String, Path, description = "the ticket a join answered", max_length = 256),
    ),
    responses(
        (status = 200, description = "where the ticket stands", body = QueueAnswer,
            headers(("Retry-After" = String, description = "seconds until the next poll"))),
        (status = 404, description = "not a ticket of this sale, or no such sale (`not_found`)", body = super::doc::ErrorDoc),
        (status = 409, description = "an open sale (`queue_not_used`)", body = super::doc::ErrorDoc),
        (status = 422, description = "a sale id that is not a number from 1 to 2^53 - 1 (`invalid_field`)", body = super::doc::ErrorDoc),
        (status = 503, description = "MySQL unavailable while the sale was first loaded (`database_unavailable`)", body = super::doc::ErrorDoc),
    )
)]
async fn poll_ticket(State(state): State<AppState>, request: Request) -> Response {
    answer_poll(&state, request.uri().path()).await
}

/// The answer to a poll of `path` (`/api/v1/sales/{sale_id}/queue/{ticket}`), routed or not
/// ([`super::front`]). The busiest route of a queued sale reads its path in place: no
/// extractor copies the parameters.
pub(crate) async fn answer_poll(state: &AppState, path: &str) -> Response {
    let (sale_id, ticket) = sale_and_ticket(path);
    let Some(sale_id) = sale_id
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|id| (1..=MAX_ID).contains(id))
    else {
        return ApiError::Invalid(FieldError::new(
            "sale_id",
            format!("must be a number from 1 to {MAX_ID}"),
        ))
        .into_response();
    };
    if ticket.len() > MAX_TICKET_LEN {
        return ApiError::NotFound("ticket").into_response();
    }
    match state.queue.poll(sale_id, ticket).await {
        Ok(answer) => with_retry(answer),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The sale id and the ticket of `/api/v1/sales/{sale_id}/queue/{ticket}` (the router matched
/// the shape; a ticket is URL-safe base64, never percent-encoded).
fn sale_and_ticket(path: &str) -> (Option<&str>, &str) {
    let mut parts = path.trim_start_matches('/').split('/');
    let sale_id = parts.nth(3);
    let ticket = parts.nth(1).unwrap_or_default();
    (sale_id, ticket)
}

/// Largest id the documents allow (JavaScript's largest exact integer).
const MAX_ID: u64 = 9_007_199_254_740_991;

#[cfg(test)]
mod tests {
    use super::sale_and_ticket;

    #[test]
    fn the_poll_path_names_its_sale_and_ticket() {
        assert_eq!(
            sale_and_ticket("/api/v1/sales/42/queue/AQGB-_x"),
            (Some("42"), "AQGB-_x")
        );
        assert_eq!(sale_and_ticket("/api/v1/sales/x/queue/t"), (Some("x"), "t"));
    }
}
