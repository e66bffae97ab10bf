use chrono::{TimeZone, Utc};
use reqwest::StatusCode;

use crate::{Api, env};

#[tokio::test]
async fn audit_logs_filter_by_type_date_and_search() {
    let e = env().await;
    let day = |d| Utc.with_ymd_and_hms(2026, 3, d, 12, 0, 0).unwrap();
    let login1 = e.sim.seed_audit_log(&e.ws, 1, day(1));
    let pause = e.sim.seed_audit_log(&e.ws, 5, day(2));
    let login3 = e.sim.seed_audit_log(&e.ws, 1, day(3));
    let api = Api::new(&e.sim, &e.key);
    let ids = |r: &crate::Resp| -> Vec<String> {
        r.items()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(&api.get("/audit-logs?activity_type=1").await),
        vec![login1.clone(), login3.clone()]
    );
    assert_eq!(
        ids(&api
            .get("/audit-logs?start_date=2026-03-02&end_date=2026-03-03")
            .await),
        vec![pause.clone(), login3.clone()],
        "inclusive whole days"
    );
    assert_eq!(
        ids(&api.get("/audit-logs?search=login").await),
        vec![login1, login3]
    );
    let r = api.get("/audit-logs?start_date=03/02/2026").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.message(),
        "querystring/start_date must match format \"date\""
    );
    let r = api.get("/audit-logs?limit=2").await;
    assert_eq!(r.items().len(), 2);
    assert_eq!(r.body["next_starting_after"], ids(&r)[1].as_str());
    let r = api.get("/audit-logs").await;
    assert_eq!(r.items()[1]["timestamp"], "2026-03-02T12:00:00.000Z");
}
