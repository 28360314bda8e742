use super::*;

#[test]
fn business_outcomes_map_to_their_documented_statuses() {
    assert_eq!(
        ApiError::conflict("sold_out", "x").status(),
        StatusCode::CONFLICT
    );
    assert_eq!(ApiError::NotStarted.status(), StatusCode::FORBIDDEN);
    assert_eq!(ApiError::Ended.status(), StatusCode::GONE);
    assert_eq!(
        ApiError::RateLimited {
            retry_after: Duration::from_millis(10)
        }
        .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        ApiError::Invalid(FieldError::new("name", "bad")).status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[test]
fn rate_limited_answers_carry_retry_after() {
    let r = ApiError::RateLimited {
        retry_after: Duration::from_millis(300),
    }
    .into_response();
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
}

#[test]
fn the_prebuilt_sold_out_body_is_what_the_generic_path_would_write() {
    let generic = serde_json::to_string(&ErrorBody {
        code: ApiError::SoldOut.code(),
        detail: ApiError::SoldOut.to_string().into(),
        field: None,
        order_id: None,
    })
    .unwrap();
    assert_eq!(SOLD_OUT_BODY, generic);
    assert_eq!(ApiError::SoldOut.status(), StatusCode::CONFLICT);
}

#[test]
fn an_unconfirmed_answer_names_its_order_and_when_to_retry() {
    let id = uuid::Uuid::now_v7();
    let r = ApiError::Unconfirmed { order_id: id }.into_response();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    assert_eq!(
        ApiError::Recovering.into_response().headers()[header::RETRY_AFTER],
        "2"
    );
}

#[test]
fn internal_causes_are_not_shown() {
    let e = ApiError::Internal(anyhow::anyhow!("secret socket path /var/run/x"));
    assert_eq!(e.to_string(), "internal error");
}

#[test]
fn a_buy_refusal_answers_with_the_code_its_metric_label_names() {
    use crate::buy::BuyError as B;
    let every = [
        B::RateLimited {
            gate: crate::buy::gate::limiter::Gate::User,
            retry_after: Duration::from_secs(1),
        },
        B::UnknownItem,
        B::NotStarted,
        B::Ended,
        B::SoldOut,
        B::InsufficientStock { remaining: 1 },
        B::LimitExceeded {
            bought: 1,
            limit: 1,
        },
        B::Invalid(FieldError::new("quantity", "bad")),
        B::Json(crate::domain::json::JsonError::Malformed("x".into())),
        B::Json(crate::domain::json::JsonError::Field(FieldError::new(
            "x", "y",
        ))),
        B::Unauthorized(crate::buy::identify::AuthError::Missing),
        B::Unconfirmed {
            order_id: uuid::Uuid::nil(),
        },
        B::Recovering,
        B::StockMoving,
        B::NotWarmed,
        B::ForeignState,
        B::BadArgument,
        B::Catalog(std::sync::Arc::new(sqlx::Error::PoolTimedOut)),
        B::Catalog(std::sync::Arc::new(sqlx::Error::RowNotFound)),
        B::Stock(StockError::Busy),
    ];
    for e in every {
        let label = e.code();
        assert_eq!(ApiError::from(e).code(), label, "{label}");
    }
}
