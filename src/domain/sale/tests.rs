//! Validation of sale requests: each rule, and the field it names.
use super::*;
use chrono::Duration;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn request() -> CreateSaleRequest {
    CreateSaleRequest {
        name: " Singles' Day ".into(),
        starts_at: "2026-11-23T13:00:00Z".into(),
        ends_at: "2026-11-23T14:00:00+00:00".into(),
        items: vec![CreateItemRequest {
            sku: "phone-1".into(),
            title: "Phone".into(),
            price_cents: 99_900,
            stock: 1000,
            per_user_limit: 1,
            payment_window_secs: None,
            shards: None,
        }],
        admission: None,
    }
}

#[test]
fn a_good_request_becomes_a_sale() {
    let sale = NewSale::parse(request(), now()).unwrap();
    assert_eq!(sale.name, "Singles' Day");
    assert_eq!(sale.ends_at - sale.starts_at, Duration::hours(1));
    assert_eq!(sale.items[0].stock, 1000);
}

#[test]
fn each_rule_names_its_field() {
    type Mutation = Box<dyn Fn(&mut CreateSaleRequest)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (Box::new(|r| r.name = "  ".into()), "name"),
        (Box::new(|r| r.starts_at = "tomorrow".into()), "starts_at"),
        (
            Box::new(|r| r.ends_at = "2026-11-23T12:30:00Z".into()),
            "ends_at",
        ),
        (
            Box::new(|r| {
                r.starts_at = "2026-11-23T10:00:00Z".into();
                r.ends_at = "2026-11-23T11:00:00Z".into();
            }),
            "ends_at",
        ),
        (Box::new(|r| r.items.clear()), "items"),
        (
            Box::new(|r| r.items[0].payment_window_secs = Some(4)),
            "items[0].payment_window_secs",
        ),
        (Box::new(|r| r.items[0].stock = 0), "items[0].stock"),
        (
            Box::new(|r| r.items[0].stock = MAX_STOCK + 1),
            "items[0].stock",
        ),
        (
            Box::new(|r| r.items[0].per_user_limit = 0),
            "items[0].per_user_limit",
        ),
        (
            Box::new(|r| r.items[0].price_cents = -1),
            "items[0].price_cents",
        ),
        (Box::new(|r| r.items[0].sku = "a b".into()), "items[0].sku"),
        (
            Box::new(|r| r.items[0].title = String::new()),
            "items[0].title",
        ),
    ];
    for (mutate, field) in cases {
        let mut req = request();
        mutate(&mut req);
        let err = NewSale::parse(req, now()).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn duplicate_skus_are_refused() {
    let mut req = request();
    let dup = CreateItemRequest {
        sku: "phone-1".into(),
        title: "Again".into(),
        price_cents: 1,
        stock: 1,
        per_user_limit: 1,
        payment_window_secs: None,
        shards: None,
    };
    req.items.push(dup);
    assert_eq!(
        NewSale::parse(req, now()).unwrap_err().field,
        "items[1].sku"
    );
}

#[test]
fn too_many_items_are_refused() {
    let mut req = request();
    req.items = (0..=MAX_ITEMS)
        .map(|i| CreateItemRequest {
            sku: format!("s{i}"),
            title: "t".into(),
            price_cents: 1,
            stock: 1,
            per_user_limit: 1,
            payment_window_secs: None,
            shards: None,
        })
        .collect();
    assert_eq!(NewSale::parse(req, now()).unwrap_err().field, "items");
}

#[test]
fn a_patch_validates_its_fields() {
    let ok = SalePatch::parse(PatchSaleRequest {
        name: Some("New".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(ok.name.as_deref(), Some("New"));
    let err = SalePatch::parse(PatchSaleRequest {
        items: Some(vec![PatchItemRequest {
            id: 1,
            title: None,
            price_cents: Some(-5),
            stock: None,
            per_user_limit: None,
            payment_window_secs: None,
        }]),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.field, "items[0].price_cents");
}
