//! Rules over MySQL's orders and stock alone.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Check, ItemFacts, holding, per_user};
use crate::stores::mysql::orders::STATUS_REJECTED;

fn held_units(facts: &ItemFacts) -> i64 {
    holding(facts).map(|o| i64::from(o.quantity)).sum()
}

/// Orders holding units never exceed what was put on sale.
pub(super) fn persisted_within_stock(facts: &ItemFacts) -> Check {
    within_stock(held_units(facts), facts.initial_stock)
}

/// `held <= initial`, as both passes check it.
pub(super) fn within_stock(held: i64, initial: i64) -> Check {
    Check::verdict(
        "persisted_within_stock",
        held <= initial,
        format!("pending and paid {held} of initial {initial}"),
        Vec::new(),
    )
}

/// `stock + pending + paid == initial`: cancelled and expired orders gave their units back.
pub(super) fn mysql_stock_balance(facts: &ItemFacts) -> Check {
    stock_balance(facts.mysql_stock, held_units(facts), facts.initial_stock)
}

/// `stock + held == initial`, as both passes check it.
pub(super) fn stock_balance(stock: i64, held: i64, initial: i64) -> Check {
    Check::verdict(
        "mysql_stock_balance",
        stock + held == initial,
        format!(
            "mysql stock {stock} + pending and paid {held} = {} vs initial {initial}",
            stock + held
        ),
        Vec::new(),
    )
}

/// Nobody holds more than the limit in MySQL.
pub(super) fn user_limit(facts: &ItemFacts) -> Check {
    let totals = per_user(holding(facts).map(|o| (&*o.user_id, o.quantity)));
    let over: Vec<String> = totals
        .iter()
        .filter(|(_, units)| **units > facts.per_user_limit)
        .map(|(u, _)| u.to_string())
        .collect();
    Check::verdict(
        "user_limit_mysql",
        over.is_empty(),
        format!(
            "{} users above the limit of {} in MySQL",
            over.len(),
            facts.per_user_limit
        ),
        over,
    )
}

/// MySQL honoured everything Redis confirmed.
pub(super) fn no_rejected_orders(facts: &ItemFacts) -> Check {
    let rejected: Vec<String> = facts
        .orders
        .iter()
        .filter(|o| &*o.status == STATUS_REJECTED)
        .map(|o| o.order_id.to_string())
        .collect();
    Check::verdict(
        "no_rejected_orders",
        rejected.is_empty(),
        format!(
            "{} orders confirmed by Redis were rejected by MySQL",
            rejected.len()
        ),
        rejected,
    )
}

/// The same reservation stored twice under different ids (a re-emitter that minted new ids):
/// orders of one buyer with the same units and reservation millisecond. One buyer's two
/// requests can also land in the same millisecond (a double click, two tabs); while the
/// ledger is there, such a group is a duplicate only when MySQL holds more of it than the
/// ledger reserved.
pub(super) fn no_duplicate_orders(facts: &ItemFacts) -> Check {
    type Content<'a> = (&'a str, u32, i64);
    let mut by_content: HashMap<Content<'_>, Vec<Uuid>> = HashMap::new();
    for o in &facts.orders {
        by_content
            .entry((&*o.user_id, o.quantity, o.reserved_at_ms))
            .or_default()
            .push(o.order_id);
    }
    by_content.retain(|_, ids| ids.len() > 1);
    if facts.ledger_available && !by_content.is_empty() {
        let mut reserved: HashMap<Content<'_>, usize> = HashMap::new();
        for e in &facts.ledger {
            let content = (&*e.user_id, e.quantity, e.reserved_at_ms);
            if by_content.contains_key(&content) {
                *reserved.entry(content).or_default() += 1;
            }
        }
        by_content.retain(|content, ids| ids.len() > reserved.get(content).copied().unwrap_or(0));
    }
    let mut dups: Vec<String> = by_content
        .into_values()
        .flatten()
        .map(|id| id.to_string())
        .collect();
    dups.sort();
    Check::verdict(
        "no_duplicate_orders",
        dups.is_empty(),
        format!("{} orders duplicate another reservation", dups.len()),
        dups,
    )
}
