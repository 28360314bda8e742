use std::{sync::Arc, time::Duration};

use http::HeaderValue;
use tokio::time::{Instant, timeout};

use super::{Crowd, Interrupt, Pool};

fn crowd(deadline_in: Duration) -> Arc<Crowd> {
    let now = std::time::Instant::now();
    Arc::new(Crowd {
        pool: Pool::new(
            "127.0.0.1:9".parse().unwrap(),
            HeaderValue::from_static("127.0.0.1:9"),
            1,
            Duration::from_secs(1),
        ),
        sale: 1,
        item: 1,
        tokens: Arc::new(Vec::new()),
        key_run: 0,
        pow_bits: 0,
        start: now,
        deadline: now + deadline_in,
        interrupted: Arc::new(Interrupt::default()),
    })
}

#[tokio::test]
async fn a_pause_sleeps_its_wait_and_says_the_crowd_goes_on() {
    let c = crowd(Duration::from_secs(600));
    let started = Instant::now();
    assert!(c.pause(Duration::from_millis(50)).await);
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn a_long_pause_wakes_at_once_when_the_crowd_is_interrupted() {
    let c = crowd(Duration::from_secs(600));
    let paused = tokio::spawn({
        let c = c.clone();
        async move { c.pause(Duration::from_secs(300)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.interrupted.raise();
    let went_on = timeout(Duration::from_secs(10), paused)
        .await
        .expect("woke");
    assert!(!went_on.unwrap(), "an interrupted crowd stops");
    assert!(
        !c.pause(Duration::from_secs(300)).await,
        "and stays stopped"
    );
}

#[tokio::test]
async fn a_pause_past_the_deadline_ends_at_the_deadline() {
    let c = crowd(Duration::from_millis(100));
    let went_on = timeout(Duration::from_secs(10), c.pause(Duration::from_secs(300))).await;
    assert!(!went_on.expect("ended at the deadline"));
}
