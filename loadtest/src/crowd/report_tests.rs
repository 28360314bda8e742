//! Tests of the crowd's figures on hand-made user records.

use super::*;

fn ms(n: u64) -> Option<Duration> {
    Some(Duration::from_millis(n))
}

/// A post-start user who joined at `sent` ms and was admitted at place `pos` (nbf 100).
fn admitted(sent: u64, pos: u64) -> UserRecord {
    UserRecord {
        join_sent: ms(sent),
        admitted_at: ms(sent + 1000 + pos),
        pos: Some(pos),
        nbf: Some(100),
        outcome: Outcome::Reserved,
        reserved_at: ms(sent + 1100),
        ..UserRecord::default()
    }
}

#[test]
fn first_come_first_served_has_tau_one_and_a_reversal_minus_one() {
    let served: Vec<UserRecord> = (0..5).map(|i| admitted(i * 10, i)).collect();
    let f = fairness(&served).unwrap();
    assert_eq!((f.users, f.kendall_tau), (5, 1.0));
    let reversed: Vec<UserRecord> = (0..5).map(|i| admitted(i * 10, 4 - i)).collect();
    assert_eq!(fairness(&reversed).unwrap().kendall_tau, -1.0);
}

#[test]
fn users_still_queued_count_by_the_position_a_poll_gave() {
    // Joined first, still waiting at place 2; the next two were admitted at places 0 and 1.
    let waiting = UserRecord {
        join_sent: ms(0),
        position: Some(2),
        ..UserRecord::default()
    };
    let f = fairness(&[waiting, admitted(10, 0), admitted(20, 1)]).unwrap();
    assert_eq!(f.users, 3);
    assert!((f.kendall_tau + 1.0 / 3.0).abs() < 1e-12, "{f:?}");
}

#[test]
fn pre_queue_places_rank_admitted_ones_first_then_polled_positions() {
    let mut records: Vec<UserRecord> = (0..4)
        .map(|i| UserRecord {
            pre_queue: true,
            joined_undrawn: true,
            join_sent: ms(i),
            ..UserRecord::default()
        })
        .collect();
    records[0].position = Some(1); // waiting, behind every admitted place
    records[1].pos = Some(5);
    records[2].pos = Some(3);
    records[3].pos = Some(4);
    let p = pre_queue(&records).unwrap();
    assert_eq!((p.users, p.joined_with_position), (4, 0));
    // Places by join order: last, 3rd, 1st, 2nd → pairs (0,3),(1,2),(2,0),(3,1): tau −2/3.
    assert!((p.kendall_tau + 2.0 / 3.0).abs() < 1e-12, "{p:?}");
    assert!(p.chi_square.is_none(), "too few for deciles");
    assert!(!p.uniform);
}

#[test]
fn waits_count_from_the_last_reservation() {
    let mut records = vec![admitted(0, 0), admitted(100, 1)]; // last 202 at 1200 ms
    for told in [1000, 1300, 3500] {
        records.push(UserRecord {
            sold_out_at: ms(told),
            outcome: Outcome::SoldOut,
            ..UserRecord::default()
        });
    }
    let w = sellout(&records).unwrap();
    assert_eq!((w.sellout_at_ms, w.users, w.over_2s), (1200.0, 3, 1));
    assert_eq!((w.max_ms, w.p99_ms), (2300.0, 2300.0));
    assert!(sellout(&records[2..]).is_none(), "nothing sold");
}

#[test]
fn outcomes_and_queue_times_cover_every_user() {
    let mut records = vec![admitted(0, 0), admitted(0, 1)];
    records.push(UserRecord {
        outcome: Outcome::Refused("buy 403 admission_expired".into()),
        ..UserRecord::default()
    });
    records.push(UserRecord::default());
    let o = outcomes(&records);
    assert_eq!((o.reserved, o.unfinished), (2, 1));
    assert_eq!(o.refused["buy 403 admission_expired"], 1);
    let q = queue_time(&records).unwrap();
    assert_eq!(q.count, 2);
    assert!((q.max_ms - 1001.0).abs() < 1.0, "{q:?}");
}
