//! The rules a create or patch request must follow, each error naming its field.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::{
    Admission, CreateSaleRequest, DEFAULT_PAYMENT_WINDOW_SECS, ItemPatch, MAX_ITEMS,
    MAX_PAYMENT_WINDOW_SECS, MAX_PER_USER_LIMIT, MAX_PRICE_CENTS, MAX_SKU_LEN, MAX_STOCK,
    MAX_TEXT_LEN, MIN_PAYMENT_WINDOW_SECS, NewItem, NewSale, PatchSaleRequest, SalePatch,
    check_window,
};
use crate::domain::FieldError;

fn text(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}

fn time(field: &str, raw: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            FieldError::new(
                field,
                format!("'{raw}' is not an RFC 3339 time such as 2026-11-23T20:00:00Z ({e})"),
            )
        })
}

fn ranged(field: &str, v: i64, min: i64, max: i64) -> Result<i64, FieldError> {
    if v < min || v > max {
        return Err(FieldError::new(
            field,
            format!("must be between {min} and {max}, got {v}"),
        ));
    }
    Ok(v)
}

fn window(field: &str, secs: i64) -> Result<u32, FieldError> {
    ranged(
        field,
        secs,
        MIN_PAYMENT_WINDOW_SECS,
        MAX_PAYMENT_WINDOW_SECS,
    )
    .map(|v| v as u32)
}

fn sku(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() || s.len() > MAX_SKU_LEN {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {MAX_SKU_LEN} characters"),
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(FieldError::new(
            field,
            "may contain only letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(s.to_string())
}

impl NewSale {
    /// Validates a create request at time `now`.
    ///
    /// # Errors
    /// The first rule the request breaks, naming its field.
    pub fn parse(req: CreateSaleRequest, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let name = text("name", &req.name, MAX_TEXT_LEN)?;
        let starts_at = time("starts_at", &req.starts_at)?;
        let ends_at = time("ends_at", &req.ends_at)?;
        check_window(starts_at, ends_at, now)?;
        if req.items.is_empty() {
            return Err(FieldError::new("items", "a sale needs at least one item"));
        }
        if req.items.len() > MAX_ITEMS {
            return Err(FieldError::new(
                "items",
                format!("a sale may have at most {MAX_ITEMS} items"),
            ));
        }
        let mut seen = HashSet::new();
        let mut items = Vec::with_capacity(req.items.len());
        for (i, item) in req.items.into_iter().enumerate() {
            let f = |name: &str| format!("items[{i}].{name}");
            let sku = sku(&f("sku"), &item.sku)?;
            if !seen.insert(sku.clone()) {
                return Err(FieldError::new(
                    f("sku"),
                    format!("sku '{sku}' appears more than once"),
                ));
            }
            items.push(NewItem {
                sku,
                title: text(&f("title"), &item.title, MAX_TEXT_LEN)?,
                price_cents: ranged(&f("price_cents"), item.price_cents, 0, MAX_PRICE_CENTS)?
                    as u64,
                stock: ranged(&f("stock"), item.stock, 1, MAX_STOCK)? as u32,
                per_user_limit: ranged(
                    &f("per_user_limit"),
                    item.per_user_limit,
                    1,
                    MAX_PER_USER_LIMIT,
                )? as u32,
                payment_window_secs: window(
                    &f("payment_window_secs"),
                    item.payment_window_secs
                        .unwrap_or(DEFAULT_PAYMENT_WINDOW_SECS),
                )?,
                shards: ranged(&f("shards"), item.shards.unwrap_or(1), 1, super::MAX_SHARDS)?
                    as u16,
            });
        }
        let admission = Admission::parse(req.admission.unwrap_or_default(), Some(starts_at))?;
        Ok(Self {
            name,
            starts_at,
            ends_at,
            items,
            admission,
        })
    }
}

impl SalePatch {
    /// Validates the shape of a patch (relations with the stored sale are checked later).
    ///
    /// # Errors
    /// The first rule the request breaks, naming its field.
    pub fn parse(req: PatchSaleRequest) -> Result<Self, FieldError> {
        let name = req
            .name
            .as_deref()
            .map(|n| text("name", n, MAX_TEXT_LEN))
            .transpose()?;
        let starts_at = req
            .starts_at
            .as_deref()
            .map(|t| time("starts_at", t))
            .transpose()?;
        let ends_at = req
            .ends_at
            .as_deref()
            .map(|t| time("ends_at", t))
            .transpose()?;
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        for (i, item) in req.items.unwrap_or_default().into_iter().enumerate() {
            let f = |name: &str| format!("items[{i}].{name}");
            if !seen.insert(item.id) {
                return Err(FieldError::new(f("id"), "item appears more than once"));
            }
            items.push(ItemPatch {
                id: item.id,
                title: item
                    .title
                    .as_deref()
                    .map(|t| text(&f("title"), t, MAX_TEXT_LEN))
                    .transpose()?,
                price_cents: item
                    .price_cents
                    .map(|p| ranged(&f("price_cents"), p, 0, MAX_PRICE_CENTS).map(|v| v as u64))
                    .transpose()?,
                stock: item
                    .stock
                    .map(|s| ranged(&f("stock"), s, 1, MAX_STOCK).map(|v| v as u32))
                    .transpose()?,
                per_user_limit: item
                    .per_user_limit
                    .map(|l| {
                        ranged(&f("per_user_limit"), l, 1, MAX_PER_USER_LIMIT).map(|v| v as u32)
                    })
                    .transpose()?,
                payment_window_secs: item
                    .payment_window_secs
                    .map(|w| window(&f("payment_window_secs"), w))
                    .transpose()?,
            });
        }
        // The opening is checked against the final start by the admin service.
        let admission = req
            .admission
            .map(|a| Admission::parse(a, None))
            .transpose()?;
        Ok(Self {
            name,
            starts_at,
            ends_at,
            items,
            admission,
        })
    }
}
