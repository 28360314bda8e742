use super::*;
use crate::stores::redis::keys::Holder;
use crate::{observe::metrics::Metrics, stock::scripts::ScriptKind};

fn pending(
    registry: &ScriptRegistry,
    item_id: u64,
    version: &str,
) -> (
    Pending,
    oneshot::Receiver<Result<DeductOutcome, StockError>>,
) {
    let script = registry.get(ScriptKind::Deduct, version).unwrap().clone();
    let (reply, answer) = oneshot::channel();
    let p = Pending {
        sale_id: 1,
        item_id,
        holder: Holder::Whole,
        sale_uid: "uid".into(),
        script,
        user: "u".into(),
        quantity: 1,
        order_id: Uuid::now_v7(),
        record: Vec::new(),
        idempotency_key: None,
        queued_at: Instant::now(),
        reply,
    };
    (p, answer)
}

fn items(batch: &[Pending]) -> Vec<u64> {
    batch.iter().map(|p| p.item_id).collect()
}

#[test]
fn a_batch_takes_the_oldest_items_requests_and_keeps_the_rest_in_order() {
    let registry = ScriptRegistry::new(Arc::new(Metrics::new()));
    let (mut queue, _answers): (VecDeque<_>, Vec<_>) = [1, 2, 1, 3, 1, 2]
        .into_iter()
        .map(|item| pending(&registry, item, "v5"))
        .unzip();
    let now = Instant::now();
    let batch = take_batch(&mut queue, now, |_| true).unwrap();
    assert_eq!(items(&batch), [1, 1, 1]);
    assert_eq!(
        queue.iter().map(|p| p.item_id).collect::<Vec<_>>(),
        [2, 3, 2]
    );
    assert_eq!(take_batch(&mut queue, now, |_| true).unwrap().len(), 2);
    assert_eq!(take_batch(&mut queue, now, |_| true).unwrap().len(), 1);
    assert!(take_batch(&mut queue, now, |_| true).is_none());
}

#[test]
fn a_batch_never_mixes_scripts_and_never_exceeds_the_maximum() {
    let registry = ScriptRegistry::new(Arc::new(Metrics::new()));
    let (mut queue, _answers): (VecDeque<_>, Vec<_>) = (0..MAX_BATCH + 10)
        .map(|i| pending(&registry, 7, if i == 1 { "v5" } else { "v6" }))
        .unzip();
    let batch = take_batch(&mut queue, Instant::now(), |_| true).unwrap();
    assert_eq!(batch.len(), MAX_BATCH);
    assert!(batch.iter().all(|p| p.script.label == "deduct.v6"));
    assert_eq!(queue.len(), 10);
    assert_eq!(
        queue[0].script.label, "deduct.v5",
        "the other script keeps its place"
    );
}

#[test]
fn an_item_at_its_in_flight_limit_waits_while_others_go() {
    let registry = ScriptRegistry::new(Arc::new(Metrics::new()));
    let (mut queue, _answers): (VecDeque<_>, Vec<_>) = [1, 2, 1]
        .into_iter()
        .map(|item| pending(&registry, item, "v5"))
        .unzip();
    let batch = take_batch(&mut queue, Instant::now(), |k| k.item_id != 1).unwrap();
    assert_eq!(items(&batch), [2]);
    assert_eq!(queue.iter().map(|p| p.item_id).collect::<Vec<_>>(), [1, 1]);
    assert!(take_batch(&mut queue, Instant::now(), |k| k.item_id != 1).is_none());
}

#[test]
fn a_busy_items_queue_is_left_alone_but_stale_requests_are_still_answered() {
    let registry = ScriptRegistry::new(Arc::new(Metrics::new()));
    let now = Instant::now();
    let (mut queue, _answers): (VecDeque<_>, Vec<_>) = [1, 1, 1]
        .into_iter()
        .map(|item| pending(&registry, item, "v5"))
        .unzip();
    let ids: Vec<_> = queue.iter().map(|p| p.order_id).collect();
    assert!(take_batch(&mut queue, now, |_| false).is_none());
    assert_eq!(queue.iter().map(|p| p.order_id).collect::<Vec<_>>(), ids);

    let (mut stale, mut stale_answer) = pending(&registry, 1, "v5");
    stale.queued_at = now - QUEUE_DEADLINE - Duration::from_millis(1);
    queue.insert(1, stale);
    assert!(take_batch(&mut queue, now, |_| false).is_none());
    assert!(matches!(stale_answer.try_recv(), Ok(Err(StockError::Busy))));
    assert_eq!(queue.iter().map(|p| p.order_id).collect::<Vec<_>>(), ids);
}

#[test]
fn requests_nobody_waits_for_or_queued_too_long_never_reach_redis() {
    let registry = ScriptRegistry::new(Arc::new(Metrics::new()));
    let (gone, gone_answer) = pending(&registry, 1, "v5");
    drop(gone_answer);
    let (mut stale, mut stale_answer) = pending(&registry, 1, "v5");
    let now = Instant::now();
    stale.queued_at = now - QUEUE_DEADLINE - Duration::from_millis(1);
    let (fresh, _fresh_answer) = pending(&registry, 1, "v5");
    let fresh_id = fresh.order_id;
    let mut queue = VecDeque::from([gone, stale, fresh]);
    let batch = take_batch(&mut queue, now, |_| true).unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].order_id, fresh_id);
    assert!(matches!(stale_answer.try_recv(), Ok(Err(StockError::Busy))));
}
