//! A user's buy: the order request with a fresh `Idempotency-Key` (the same on its retries),
//! retried after 429 and 503 as `Retry-After` says and after a request that got no answer.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method};

use super::{pool::Call, user::Crowd};
use crate::{
    client::Answer,
    errors::code_of,
    run::{FIRST_RETRY_WAIT, idempotency_key},
};

/// How a buy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BuyEnd {
    /// 2xx: a unit reserved.
    Reserved,
    /// 409 or 410 `sold_out` (or `insufficient_stock`).
    SoldOut,
    /// Another answer that is final (403 `admission_*`, 410 `ended`, 409 `limit_exceeded`…),
    /// or 429/503 on the last attempt: status and code.
    Refused(String),
    /// No answer, attempt after attempt.
    Failed,
    /// The run stopped first.
    Stopped,
}

/// How a buy retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retrying {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Longest wait between two, whatever `Retry-After` says.
    pub cap: Duration,
}

/// Buys one unit as `user` (with `admission` as `X-Admission-Token` when given), `key_run`
/// making the idempotency key unique; counts each attempt in `requests`.
pub(crate) async fn buy(
    crowd: &Crowd,
    user: u64,
    admission: Option<&HeaderValue>,
    key_run: u64,
    retrying: Retrying,
    requests: &mut u64,
) -> BuyEnd {
    let key = idempotency_key(key_run, user);
    let auth = &crowd.tokens[user as usize];
    let path = format!("/api/v1/sales/{}/items/{}/orders", crowd.sale, crowd.item);
    let mut attempt = 1;
    loop {
        let mut headers = vec![("authorization", auth)];
        headers.extend(key.as_ref().map(|k| ("idempotency-key", k)));
        headers.extend(admission.map(|a| ("x-admission-token", a)));
        let call = Call {
            method: Method::POST,
            path: path.clone(),
            body: Bytes::from_static(br#"{"quantity":1}"#),
            headers,
        };
        let (_, answer) = crowd.pool.send(call).await;
        *requests += 1;
        let retry_after = match answer {
            Ok(a) => match verdict(&a) {
                Some(end) => return end,
                None => a.retry_after,
            },
            Err(_) => None,
        };
        if attempt >= retrying.attempts {
            return BuyEnd::Failed;
        }
        let backoff = FIRST_RETRY_WAIT * 2u32.pow((attempt - 1).min(4));
        if !crowd
            .pause(retry_after.unwrap_or(backoff).min(retrying.cap))
            .await
        {
            return BuyEnd::Stopped;
        }
        attempt += 1;
    }
}

/// How an answer ends the buy; `None` for 429 and 503 (try again).
fn verdict(a: &Answer) -> Option<BuyEnd> {
    let code = code_of(&a.body).map(String::from_utf8_lossy);
    match (a.status, code.as_deref()) {
        (200..=299, _) => Some(BuyEnd::Reserved),
        (409 | 410, Some("sold_out" | "insufficient_stock")) => Some(BuyEnd::SoldOut),
        (429 | 503, _) => None,
        (status, Some(code)) => Some(BuyEnd::Refused(format!("{status} {code}"))),
        (status, None) => Some(BuyEnd::Refused(status.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &'static str) -> Answer {
        Answer {
            status,
            body: Bytes::from_static(body.as_bytes()),
            retry_after: None,
            replayed: false,
        }
    }

    #[test]
    fn answers_end_a_buy_or_retry_it() {
        assert_eq!(verdict(&answer(202, "{}")), Some(BuyEnd::Reserved));
        assert_eq!(
            verdict(&answer(409, r#"{"code":"sold_out"}"#)),
            Some(BuyEnd::SoldOut)
        );
        assert_eq!(
            verdict(&answer(410, r#"{"code":"sold_out"}"#)),
            Some(BuyEnd::SoldOut)
        );
        assert_eq!(verdict(&answer(429, r#"{"code":"rate_limited"}"#)), None);
        assert_eq!(verdict(&answer(503, "")), None);
        assert_eq!(
            verdict(&answer(403, r#"{"code":"admission_expired"}"#)),
            Some(BuyEnd::Refused("403 admission_expired".into()))
        );
        assert_eq!(
            verdict(&answer(500, "oops")),
            Some(BuyEnd::Refused("500".into()))
        );
    }
}
