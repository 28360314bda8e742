use super::*;
use crate::domain::sale::{Admission, AdmissionMode};

fn policy(admit_per_sec: u32, max_active: u32) -> Admission {
    Admission {
        mode: AdmissionMode::Queue,
        admit_per_sec,
        max_active,
        admission_ttl_secs: 60,
        ..Default::default()
    }
}

fn seen(joined: u64, remaining: i64, finished: u64) -> Observed {
    Observed {
        pre: 0,
        seq: joined,
        drawn: true,
        pre_total: 0,
        seed: 7,
        finished,
        remaining: Some(remaining),
    }
}

fn clock(now: i64) -> Clock {
    Clock {
        now,
        starts_at: 1_000,
        ends_at: 10_000,
        ttl: 60,
        admit_per_sec: 10,
        overbooking: 1.5,
    }
}

/// Ticks once a second from `t0` (seconds) `n` times.
fn run(mut b: Board, p: &Admission, s: &Observed, t0: i64, n: i64) -> Board {
    for i in 0..n {
        let now = (t0 + i) * 1000;
        b = b
            .lapse(now / 1000, i64::from(p.admission_ttl_secs))
            .advance(s, p, now, true);
    }
    b
}

#[test]
fn now_serving_moves_at_the_rate() {
    let p = policy(10, 1_000);
    let b = run(Board::default(), &p, &seen(1_000, 1_000, 0), 1_000, 4);
    // The first tick only starts the clock.
    assert_eq!(b.now_serving, 30);
    assert_eq!(b.marks, vec![(1_001, 10), (1_002, 20), (1_003, 30)]);
    assert!(b.rate > 0.0);
}

#[test]
fn admission_stops_at_max_active_and_resumes_when_buyers_finish() {
    let p = policy(100, 25);
    let b = run(Board::default(), &p, &seen(1_000, 1_000, 0), 1_000, 5);
    assert_eq!((b.now_serving, b.active), (25, 25));
    let b = run(b, &p, &seen(1_000, 990, 10), 1_005, 1);
    assert_eq!(
        (b.now_serving, b.active),
        (35, 25),
        "ten finished, ten more in"
    );
}

#[test]
fn admission_stops_at_the_stock_times_overbooking_and_resumes_when_stock_comes_back() {
    let p = policy(100, 1_000);
    let b = run(Board::default(), &p, &seen(1_000, 10, 0), 1_000, 3);
    assert_eq!(b.now_serving, 15, "10 units x 1.5");
    let b = run(b, &p, &seen(1_000, 12, 0), 1_003, 1);
    assert_eq!(b.now_serving, 18, "two units back: three more places");
}

#[test]
fn lapsed_admissions_free_their_places() {
    let p = policy(100, 20);
    let b = run(Board::default(), &p, &seen(1_000, 1_000, 0), 1_000, 3);
    assert_eq!(b.now_serving, 20);
    // Sixty seconds after the second that admitted them, those places lapse.
    let b = run(b, &p, &seen(1_000, 1_000, 0), 1_061, 1);
    assert_eq!(b.expired_before, 20);
    assert_eq!(b.now_serving, 40);
}

#[test]
fn a_sold_out_board_stops_and_says_so_to_every_ticket() {
    let p = policy(100, 1_000);
    let b = run(Board::default(), &p, &seen(1_000, 0, 0), 1_000, 3);
    assert!(b.sold_out);
    assert_eq!(b.now_serving, 0);
    let s = b.standing(Place(500 * 2), &clock(1_003));
    assert_eq!(s.state, State::SoldOut);
}

#[test]
fn nobody_is_admitted_before_the_start_or_the_draw() {
    let p = policy(100, 1_000);
    let mut s = seen(100, 100, 0);
    s.drawn = false;
    s.pre = 100;
    let b = Board::default().advance(&s, &p, 1_000_000, true);
    let b = b.advance(&s, &p, 1_001_000, true);
    assert_eq!((b.now_serving, b.joined), (0, 100));
    let b = b.advance(&seen(100, 100, 0), &p, 1_002_000, false);
    assert_eq!(b.now_serving, 0);
}

#[test]
fn a_waiting_ticket_knows_its_place_and_polls_by_its_distance() {
    let b = Board {
        drawn: true,
        pre_total: 10,
        joined: 1_000,
        now_serving: 100,
        remaining: Some(1_000),
        ..Default::default()
    };
    // Arrival index 200: position 210.
    let s = b.standing(Place(200 * 2), &clock(1_100));
    assert_eq!(s.state, State::Waiting);
    assert_eq!((s.position, s.ahead), (Some(210), Some(110)));
    assert_eq!(s.eta_secs, Some(12), "111 places at 10 a second");
    assert_eq!(s.retry_after, 3);
    // Beyond what 1000 units x 1.5 can serve: every second.
    let far = b.standing(Place(5_000 * 2), &clock(1_100));
    assert_eq!(far.retry_after, 1);
}

#[test]
fn an_admitted_ticket_lapses_after_the_admission_lifetime() {
    let b = Board {
        drawn: true,
        joined: 100,
        now_serving: 20,
        remaining: Some(100),
        marks: vec![(1_001, 10), (1_002, 20)],
        ..Default::default()
    };
    let s = b.standing(Place(15 * 2), &clock(1_010));
    assert_eq!((s.state, s.admitted_at), (State::Admitted, Some(1_002)));
    let s = b.standing(Place(15 * 2), &clock(1_062));
    assert_eq!(s.state, State::Expired);
    let lapsed = Board {
        expired_before: 10,
        ..b.clone()
    };
    assert_eq!(
        lapsed.standing(Place(5 * 2), &clock(1_010)).state,
        State::Expired
    );
    assert_eq!(
        b.standing(Place(5 * 2), &clock(10_000)).state,
        State::Expired,
        "ended"
    );
}

#[test]
fn a_pre_queue_ticket_waits_for_the_draw_then_has_a_drawn_place() {
    let before = Board::default();
    let pre = Place(3 * 2 + 1);
    let s = before.standing(pre, &clock(900));
    assert_eq!(
        (s.state, s.position, s.eta_secs),
        (State::Waiting, None, Some(100))
    );
    assert_eq!(s.retry_after, 30);
    let drawn = Board {
        drawn: true,
        pre_total: 50,
        seed: 11,
        joined: 50,
        remaining: Some(100),
        ..Default::default()
    };
    let p = drawn.standing(pre, &clock(1_000)).position.unwrap();
    assert!(p < 50);
    assert_eq!(Some(p), shuffle::position(11, 50, 3));
}

#[test]
fn an_answer_written_by_hand_is_the_json_serde_writes() {
    use crate::buy::waiting_room::QueueAnswer;
    let answers = [
        QueueAnswer {
            ticket: Some("AQAB-_x".into()),
            state: State::Waiting,
            position: Some(7),
            ahead: Some(3),
            now_serving: 4,
            eta_secs: None,
            admission_token: None,
            retry_after_secs: 1,
        },
        QueueAnswer {
            ticket: None,
            state: State::Admitted,
            position: Some(0),
            ahead: None,
            now_serving: 1,
            eta_secs: None,
            admission_token: Some("eyJ.a-b.c_d".into()),
            retry_after_secs: 2,
        },
        QueueAnswer {
            ticket: None,
            state: State::SoldOut,
            position: None,
            ahead: None,
            now_serving: 1_000_009,
            eta_secs: Some(12_345_678_901),
            admission_token: None,
            retry_after_secs: 1,
        },
    ];
    for a in answers {
        let by_hand: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
        assert_eq!(
            by_hand,
            serde_json::to_value(&a).unwrap(),
            "{}",
            a.to_json()
        );
    }
}
