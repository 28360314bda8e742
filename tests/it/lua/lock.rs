//! The lock scripts (no sale pins them) and the leader election built on them.

use std::time::Duration;

use seckill::stores::redis::lock::{LeaderElection, RedisLock};

use super::service;

#[tokio::test]
async fn lock_scripts_act_only_for_the_owner() {
    let s = service().await;
    let lock = RedisLock::new(s.redis().clone(), s.keys().clone(), s.scripts().metrics());
    let a = lock
        .try_acquire("prewarm:s1", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("free lock");
    assert!(
        lock.try_acquire("prewarm:s1", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none(),
        "held lock"
    );
    assert!(lock.renew(&a).await.unwrap());
    assert!(lock.release(&a).await.unwrap());
    assert!(
        !lock.release(&a).await.unwrap(),
        "second release is a no-op"
    );
    assert!(
        !lock.renew(&a).await.unwrap(),
        "a released lock cannot be renewed"
    );

    // An expired owner cannot release the next owner's lock.
    let short = lock
        .try_acquire("prewarm:s2", Duration::from_millis(100))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = lock
        .try_acquire("prewarm:s2", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("expired lock is free");
    assert!(!lock.release(&short).await.unwrap());
    assert_eq!(
        lock.holder("prewarm:s2").await.unwrap().as_deref(),
        Some(next.token())
    );
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_dead_leaders_lock_expires() {
    let s = service().await;
    let lock = RedisLock::new(s.redis().clone(), s.keys().clone(), s.scripts().metrics());
    let ttl = Duration::from_millis(300);
    let mut a = LeaderElection::new(lock.clone(), "job", ttl);
    let mut b = LeaderElection::new(lock.clone(), "job", ttl);
    assert!(a.ensure().await.unwrap());
    assert!(!b.ensure().await.unwrap());
    assert!(a.ensure().await.unwrap(), "the leader renews");
    // `a` dies without stepping down: after the ttl, `b` takes over and `a` learns it lost.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(b.ensure().await.unwrap());
    assert!(!a.ensure().await.unwrap());
    b.step_down().await;
    assert!(
        a.ensure().await.unwrap(),
        "stepping down frees the lock at once"
    );
}
