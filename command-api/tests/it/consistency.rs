//! Read your writes under pressure: while other writers keep the system busy and the
//! projections process is paused (SIGSTOP), a query with `X-Min-Position` waits for its own
//! write and answers fresh once the projection resumes; when the pause outlasts the 5 s wait,
//! it answers what it has with `X-Consistency: stale`.

use std::time::{Duration, Instant};

use reqwest::Method as M;
use serde_json::{Value, json};

use crate::support::Stack;

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

/// Renames the caller; returns the command's position token.
async fn rename(stack: &Stack, token: &str, name: &str) -> String {
    let (status, headers, body) = stack
        .call(
            M::PUT,
            "/api/users/profile",
            token,
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    headers["x-event-position"]
        .to_str()
        .expect("position")
        .to_owned()
}

async fn profile_after(stack: &Stack, token: &str, position: &str) -> (Option<String>, Value) {
    let reply = stack
        .http
        .get(stack.url("/api/users/profile"))
        .bearer_auth(token)
        .header("x-min-position", position)
        .send()
        .await
        .expect("profile");
    assert_eq!(reply.status(), 200);
    let consistency = reply
        .headers()
        .get("x-consistency")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (consistency, reply.json().await.expect("json"))
}

#[tokio::test]
async fn a_read_waits_for_its_own_write_through_a_paused_projection_then_answers_stale() {
    let stack = Stack::start().await;
    let token = {
        assert_eq!(stack.register("reader@example.com").await.status(), 201);
        stack
            .login("reader@example.com", crate::support::PASSWORD)
            .await
    };
    let pid = stack.projections.pid();

    // Other writers, on other aggregates (and so other partitions), for the whole test.
    let busy = async {
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() < Duration::from_secs(14) && i < 400 {
            let email = format!("busy-{i}@example.com");
            assert_eq!(stack.register(&email).await.status(), 201);
            i += 1;
        }
        i
    };
    let reads = async {
        // A short pause: the query waits, and answers fresh with its own write once the
        // projection resumes.
        signal(pid, "STOP");
        let position = rename(&stack, &token, "During a short pause").await;
        let asked = Instant::now();
        let (answer, ()) = tokio::join!(profile_after(&stack, &token, &position), async {
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            signal(pid, "CONT");
        });
        let waited = asked.elapsed();
        assert_eq!(answer.0, None, "fresh once the projection caught up");
        assert_eq!(answer.1["name"], "During a short pause", "{}", answer.1);
        assert!(
            waited >= Duration::from_millis(1_500),
            "it waited for the paused projection ({waited:?})"
        );

        // A pause longer than the wait: the answer is stale, with what the model has.
        signal(pid, "STOP");
        let position = rename(&stack, &token, "During a long pause").await;
        let (consistency, body) = profile_after(&stack, &token, &position).await;
        signal(pid, "CONT");
        assert_eq!(consistency.as_deref(), Some("stale"));
        assert_eq!(
            body["name"], "During a short pause",
            "the last applied state: {body}"
        );

        // And once resumed, the same token reads fresh.
        let (consistency, body) = profile_after(&stack, &token, &position).await;
        assert_eq!(consistency, None);
        assert_eq!(body["name"], "During a long pause");
    };
    let (written, ()) = tokio::join!(busy, reads);
    assert!(written > 0, "other writers were busy meanwhile");
}

#[tokio::test]
async fn projection_health_is_reported_to_admins_and_in_metrics() {
    let stack = Stack::start().await;
    let admin = stack
        .login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD)
        .await;
    assert_eq!(stack.register("someone@example.com").await.status(), 201);
    let someone = stack
        .login("someone@example.com", crate::support::PASSWORD)
        .await;
    let (status, _, _) = stack
        .call(M::GET, "/api/admin/projections", &someone, None)
        .await;
    assert_eq!(status, 403, "admins only");

    // Every read model reports within a few seconds; user-profiles has applied the two
    // registrations (the admin's and someone's).
    let health = plumbing::testkit::eventually(
        "every projection to report",
        Duration::from_secs(60),
        || async {
            let (status, _, body) = stack
                .call(M::GET, "/api/admin/projections", &admin, None)
                .await;
            let all_report = body["projections"]
                .as_array()?
                .iter()
                .all(|p| p["healthy"] == true);
            let profiles = body["projections"]
                .as_array()?
                .iter()
                .find(|p| p["name"] == "user-profiles")?
                .clone();
            (status == 200 && all_report && profiles["applied_position"].as_i64()? > 0)
                .then_some(body)
        },
    )
    .await;
    let names: Vec<&str> = health["projections"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "user-profiles",
            "catalog",
            "availability",
            "bookings",
            "sales",
            "invoices"
        ]
    );
    assert!(health["head_position"].as_i64().expect("head") > 0);
    for p in health["projections"].as_array().expect("list") {
        assert_eq!(p["dead_lettered"], 0, "{p}");
        assert!(p["lag_messages"].as_i64().expect("lag") >= 0, "{p}");
    }

    let metrics = stack
        .http
        .get(format!("{}/metrics", stack.projections.ops_url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for gauge in [
        "consumer_lag_messages",
        "consumer_dead_letter_messages",
        "consumer_applied_position",
    ] {
        assert!(metrics.contains(gauge), "/metrics has {gauge}");
    }
}
