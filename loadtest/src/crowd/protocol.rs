//! The waiting room's answers as the crowd reads them: a place's status, a proof-of-work
//! challenge, and the claims of an admission token (read, not verified: the crowd has no key).

use serde::Deserialize;

/// A join's or a poll's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Status {
    /// The place's ticket (the join's answer has it; a poll's may not).
    #[serde(default)]
    pub ticket: Option<String>,
    /// Where the place stands.
    pub state: State,
    /// The place in the queue; none in the pre-queue before the draw at the start.
    #[serde(default)]
    pub position: Option<u64>,
    /// With `admitted`: the token the buy carries.
    #[serde(default)]
    pub admission_token: Option<String>,
}

/// Where a place stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// In the queue: poll again after `Retry-After`.
    Waiting,
    /// Admitted: buy with the admission token.
    Admitted,
    /// No stock left: stop.
    SoldOut,
    /// The admission lapsed: stop.
    Expired,
    /// A state this client does not know.
    #[serde(other)]
    Unknown,
}

/// A proof-of-work challenge.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Challenge {
    /// Opaque, hashed as given.
    pub challenge: String,
    /// Leading zero bits the hash needs.
    pub bits: u32,
}

/// The claims of an admission token the crowd reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Admission {
    /// The place in the queue, 0-based: the server admits places in increasing `pos`.
    pub pos: u64,
    /// When the server admitted the place (Unix seconds).
    pub nbf: u64,
}

/// A status of an answer's body; `None` when it is not one.
pub(crate) fn status_of(body: &[u8]) -> Option<Status> {
    serde_json::from_slice(body).ok()
}

/// A challenge of an answer's body; `None` when it is not one.
pub(crate) fn challenge_of(body: &[u8]) -> Option<Challenge> {
    serde_json::from_slice(body).ok()
}

/// The claims of an admission token, decoded from its payload segment without checking the
/// signature; `None` when it is no JWT or lacks `pos` or `nbf`.
pub(crate) fn admission_of(token: &str) -> Option<Admission> {
    jsonwebtoken::dangerous::insecure_decode_claims(token).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_with_or_without_a_position() {
        let s = status_of(br#"{"ticket":"t1","state":"waiting","position":null,"ahead":null,"now_serving":0,"eta_secs":null}"#)
            .unwrap();
        assert_eq!(
            (s.ticket.as_deref(), s.state, s.position),
            (Some("t1"), State::Waiting, None)
        );
        let s = status_of(br#"{"state":"admitted","position":4,"ahead":0,"now_serving":5,"eta_secs":0,"admission_token":"a.b.c"}"#)
            .unwrap();
        assert_eq!((s.state, s.position), (State::Admitted, Some(4)));
        assert_eq!(s.admission_token.as_deref(), Some("a.b.c"));
        assert_eq!(
            status_of(br#"{"state":"sold_out"}"#).unwrap().state,
            State::SoldOut
        );
        assert_eq!(
            status_of(br#"{"state":"paused"}"#).unwrap().state,
            State::Unknown
        );
        assert!(status_of(br#"{"code":"queue_not_open"}"#).is_none());
    }

    #[test]
    fn challenges_are_read() {
        let c = challenge_of(br#"{"challenge":"abc:1","bits":12,"expires_in_secs":300}"#).unwrap();
        assert_eq!((c.challenge.as_str(), c.bits), ("abc:1", 12));
    }

    #[test]
    fn an_admission_tokens_claims_are_read_without_its_key() {
        let claims = serde_json::json!({"aud": "sale:7", "sub": "lt-3", "nbf": 1_700_000_000u64,
                                        "exp": 1_700_000_120u64, "pos": 41});
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"the server's, unknown here"),
        )
        .unwrap();
        let a = admission_of(&token).unwrap();
        assert_eq!((a.pos, a.nbf), (41, 1_700_000_000));
        // By hand: {"pos":0,"nbf":5} in base64url without padding.
        assert_eq!(
            admission_of("eyJhbGciOiJIUzI1NiJ9.eyJwb3MiOjAsIm5iZiI6NX0.sig"),
            Some(Admission { pos: 0, nbf: 5 })
        );
        assert_eq!(admission_of("not a token"), None);
        assert_eq!(admission_of("a.eyJuYmYiOjV9.c"), None, "no pos");
    }
}
