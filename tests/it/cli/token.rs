//! `seckill token`: a buyer token the service accepts, with the lifetime asked for.

use super::seckill;
use crate::support::JWT_SECRET;

#[test]
fn token_prints_a_buyer_token_the_service_accepts() {
    let out = seckill(&["token", "--user", "alice", "--ttl", "10m"], &[]);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let settings = seckill::config::Settings {
        jwt_secret: seckill::config::Secret::new(JWT_SECRET.as_str()),
        ..Default::default()
    };
    let auth = seckill::buy::identify::Authenticator::new(&settings);
    let user = auth
        .buyer(Some(&format!("Bearer {token}")), None, None)
        .expect("the service accepts it");
    assert_eq!(user.as_ref(), "alice");
    // Its lifetime is the one asked for.
    let claims: serde_json::Value =
        serde_json::from_slice(&base64_url_decode(token.split('.').nth(1).unwrap())).unwrap();
    let life = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(life, 600);
    // Bad input: a clear error and exit 2.
    for (args, env) in [
        (vec!["token", "--user", "alice", "--ttl", "forever"], vec![]),
        (vec!["token", "--user", "   "], vec![]),
        (vec!["token"], vec![]),
        (
            vec!["token", "--user", "alice"],
            vec![("SECKILL_JWT_SECRET", "change-me-jwt-secret")],
        ),
    ] {
        let out = seckill(&args, &env);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty());
    }
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = alphabet.iter().position(|a| *a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}
