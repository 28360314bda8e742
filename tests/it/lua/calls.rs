//! Hand-built calls of the scripts (a whole batch, a broken argument list) and readers of their
//! raw replies.

use chrono::Utc;
use seckill::{
    domain::script_version::has_compact_ledger,
    stock::{StockService, compact::base36, ledger::parse_order_id, scripts::ScriptKind},
};
use uuid::Uuid;

use super::{order_id, payload};

/// One request of a hand-built batch.
#[derive(Clone)]
pub(crate) struct Req {
    pub user: String,
    /// Units asked for, as sent (so a fraction can be sent).
    pub qty: String,
    pub order: Uuid,
    pub key: String,
}

/// A request of `user` for `qty` with idempotency `key` ('' for none), with the order id the
/// buy path would send.
pub(crate) fn req(version: &str, user: &str, qty: &str, key: &str) -> Req {
    Req {
        user: user.into(),
        qty: qty.into(),
        order: order_id(version, user, (!key.is_empty()).then_some(key)),
        key: key.into(),
    }
}

/// One call of `version`'s deduct script for `reqs` under `uid`, claiming `n` requests.
pub(crate) async fn deduct_batch(
    s: &StockService,
    version: &str,
    uid: &str,
    reqs: &[Req],
    n: usize,
) -> redis::RedisResult<Vec<Vec<redis::Value>>> {
    let compact = has_compact_ledger(version);
    let at = base36(Utc::now().timestamp_millis());
    invoke(s, ScriptKind::Deduct, version, |cmd| {
        cmd.arg(uid).arg(n);
        for r in reqs {
            cmd.arg(&r.user).arg(&r.qty);
            if compact {
                cmd.arg(r.order.as_bytes()).arg(&at);
            } else {
                let qty = r.qty.parse().unwrap_or(0);
                let key = (!r.key.is_empty()).then_some(r.key.as_str());
                cmd.arg(r.order.to_string())
                    .arg(payload(r.order, &r.user, qty, key));
            }
            cmd.arg(&r.key);
        }
    })
    .await
}

/// One call of `version`'s script of `kind` on the test item, with the arguments `args` adds.
pub(crate) async fn invoke<T: redis::FromRedisValue>(
    s: &StockService,
    kind: ScriptKind,
    version: &str,
    args: impl Fn(&mut redis::Cmd),
) -> redis::RedisResult<T> {
    let script = s.scripts().get(kind, version).unwrap().clone();
    let keys = s.keys().item(1, 1);
    let mut conn = s.redis().get();
    script.invoke(&mut conn, &keys.as_script_keys(), args).await
}

/// The `kind.file` label of the script `version` runs (the name its error replies carry).
pub(crate) fn label(s: &StockService, kind: ScriptKind, version: &str) -> String {
    s.scripts().get(kind, version).unwrap().label.clone()
}

/// A reply of integers.
pub(crate) fn ints(reply: &[redis::Value]) -> Vec<i64> {
    reply
        .iter()
        .map(|v| match v {
            redis::Value::Int(n) => *n,
            other => panic!("expected an integer, got {other:?}"),
        })
        .collect()
}

/// Each reply's integers.
pub(crate) fn all_ints(replies: &[Vec<redis::Value>]) -> Vec<Vec<i64>> {
    replies.iter().map(|r| ints(r)).collect()
}

/// A REPLAYED reply's order (text before v5, 16 bytes from v5) and units.
pub(crate) fn replayed(reply: &[redis::Value]) -> (Uuid, i64) {
    match reply {
        [
            redis::Value::Int(2),
            redis::Value::BulkString(id),
            redis::Value::Int(units),
        ] => (parse_order_id(id).expect("an order id"), *units),
        other => panic!("expected REPLAYED, got {other:?}"),
    }
}
