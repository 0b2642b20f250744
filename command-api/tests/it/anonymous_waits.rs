//! Anonymous `X-Min-Position` waits are bounded (issue 22, finding 6): an instance lets 32
//! anonymous requests wait for its read models at once; the next one answers at once
//! (`X-Consistency: stale`) instead of queueing, while signed-in readers still wait.
//!
//! command-api runs alone here (no projections), so a position it just wrote is held by the
//! store but never applied: every wait on it lasts the full 5 s. The instance's own gauge
//! says when all 32 slots are taken.

use std::time::Duration;

use plumbing::testkit::{self, Service, eventually};
use serde_json::json;
use uuid::Uuid;

use crate::support::mint_token;

/// A gauge or counter from the instance's `/metrics` (0 before it is first recorded).
async fn metric(http: &reqwest::Client, api: &Service, name: &str) -> f64 {
    let text = http
        .get(format!("{}/metrics", api.ops_url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Lists events after `position`; (status, `X-Consistency`).
async fn list_after(
    http: reqwest::Client,
    url: String,
    position: String,
    token: Option<String>,
) -> (u16, Option<String>) {
    let mut request = http.get(url).header("x-min-position", position);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.expect("list events");
    let consistency = reply
        .headers()
        .get("x-consistency")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (reply.status().as_u16(), consistency)
}

#[tokio::test]
async fn the_33rd_anonymous_wait_answers_stale_at_once_while_signed_in_readers_still_wait() {
    let db = testkit::fresh_database().await;
    let env = testkit::service_env(&db.url, &testkit::unique_prefix());
    let api = Service::start("command-api", &env, true).await;
    let http = reqwest::Client::new();
    let organizer = mint_token(Uuid::new_v4(), &["organizer"]);
    let created = http
        .post(format!("{}/api/events", api.url()))
        .bearer_auth(&organizer)
        .json(&json!({"name": "Waits", "venue": "Hall", "starts_at": "2031-01-01T19:00:00Z"}))
        .send()
        .await
        .expect("create event");
    assert_eq!(created.status(), 201);
    let position = created
        .headers()
        .get("x-event-position")
        .and_then(|v| v.to_str().ok())
        .expect("a command answers its position")
        .to_owned();
    let list = format!("{}/api/events", api.url());
    let gauge = command_api::http::consistency::ANONYMOUS_WAITS_METRIC;
    let full = command_api::http::consistency::ANONYMOUS_WAITS_FULL_METRIC;
    let slots = command_api::http::consistency::ANONYMOUS_WAITS;

    let waiting: Vec<_> = (0..slots)
        .map(|_| {
            tokio::spawn(list_after(
                http.clone(),
                list.clone(),
                position.clone(),
                None,
            ))
        })
        .collect();
    let signed_in = tokio::spawn(list_after(
        http.clone(),
        list.clone(),
        position.clone(),
        Some(mint_token(Uuid::new_v4(), &[])),
    ));
    eventually(
        "every anonymous slot to be taken",
        Duration::from_secs(4),
        || async { (metric(&http, &api, gauge).await == slots as f64).then_some(()) },
    )
    .await;

    let (status, consistency) =
        list_after(http.clone(), list.clone(), position.clone(), None).await;
    assert_eq!(status, 200);
    assert_eq!(consistency.as_deref(), Some("stale"), "behind, and says so");
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "it answered while all {slots} earlier waits were still waiting"
    );
    assert_eq!(
        metric(&http, &api, full).await,
        1.0,
        "it found every slot taken"
    );

    for wait in waiting {
        let (status, consistency) = wait.await.expect("wait");
        assert_eq!(
            (status, consistency.as_deref()),
            (200, Some("stale")),
            "a wait that ran out"
        );
    }
    let (status, consistency) = signed_in.await.expect("signed-in wait");
    assert_eq!((status, consistency.as_deref()), (200, Some("stale")));
    assert_eq!(
        metric(&http, &api, full).await,
        1.0,
        "only the 33rd found every slot taken: the signed-in reader took none"
    );
    assert_eq!(
        metric(&http, &api, gauge).await,
        0.0,
        "every slot was given back"
    );
}
