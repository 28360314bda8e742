//! `loadtest --queue`: a crowd through a queued sale's waiting room, against the real servers.
//! Every buyer ends reserved or told sold out, the units sell exactly, joins after the start
//! are served in the order they were sent, the pre-queue's places look uniformly drawn, and
//! the open sale beside it is measured in the same run.

use super::args;
use crate::support::spawn_app;

#[tokio::test]
async fn a_crowd_goes_through_the_waiting_room_fairly_and_sells_exactly_the_stock() {
    let app = spawn_app().await;
    let extra = [
        "--queue",
        "--create-sale",
        "--users",
        "3000",
        "--stock",
        "100",
        "--connections",
        "32",
        "--pre-queue-share",
        "0.3",
        "--pre-queue-secs",
        "3",
        "--admit-per-sec",
        "200",
        "--max-active",
        "100",
        "--compare-open",
    ];
    let report = loadtest::run_crowd(
        args(&app.base, &app.admin_base, &extra),
        false,
        std::future::pending(),
    )
    .await
    .unwrap();
    let o = &report.outcomes;
    assert_eq!((report.units_sold, o.reserved), (100, 100), "{report:?}");
    assert_eq!((o.failed, o.unfinished), (0, 0), "{report:?}");
    assert_eq!(
        o.reserved + o.sold_out + o.expired,
        3000,
        "everyone heard an end: {report:?}"
    );
    let fair = report.fairness.as_ref().expect("post-start joiners");
    assert!(fair.users > 1500 && fair.kendall_tau > 0.95, "{fair:?}");
    let pre = report.pre_queue.as_ref().expect("pre-queue joiners");
    assert_eq!(pre.joined_with_position, 0, "{pre:?}");
    assert!(
        pre.z_score.abs() < 4.0,
        "the draw follows arrival order: {pre:?}"
    );
    let open = report.open.as_ref().expect("--compare-open");
    assert_eq!(open.units_sold, 100, "{open:?}");
    assert!(report.requests_per_user < 8.0, "{report:?}");
}
