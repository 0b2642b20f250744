//! The load generator's own correctness checks on small scenarios against the running
//! stack: the benchmark's code paths (pgbench reference, buyers, holds, payments,
//! WebSocket watchers, lag, oversell and "nothing held" checks, the waiting room) stay
//! working. Its figures are not asserted — performance lives in BENCHMARKS.md.

use std::process::Stdio;

use plumbing::testkit;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Stack};

fn setting<'a>(stack: &'a Stack, name: &str, default: &'a str) -> &'a str {
    stack.env.get(name).map_or(default, String::as_str)
}

/// Runs `loadgen` against `stack`; returns its stdout after asserting it succeeded.
async fn loadgen(stack: &Stack, notifier: Option<&str>, args: &[&str]) -> String {
    let mut command = tokio::process::Command::new(testkit::binary("loadgen"));
    command
        .args(args)
        .env("LOADGEN_API", stack.url(""))
        .env("DATABASE_URL", &stack.db.url)
        .env("BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env(
            "HOLD_TTL_SECONDS",
            setting(stack, "HOLD_TTL_SECONDS", "600"),
        )
        .env(
            "PAYMENT_TIMEOUT_SECONDS",
            setting(stack, "PAYMENT_TIMEOUT_SECONDS", "120"),
        )
        .env("JWT_SECRET", testkit::jwt_secret())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(notifier) = notifier {
        command.env("LOADGEN_WS", notifier);
        command.env("LOADGEN_NOTIFIER_OPS", stack.notifier_ops_url(notifier));
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(240), command.output())
        .await
        .expect("loadgen finishes within 4 minutes")
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(output.status.success(), "loadgen {args:?} failed: {stdout}");
    stdout
}

#[tokio::test]
async fn a_small_hot_section_passes_the_load_generators_checks() {
    let overrides = [("HOLD_TTL_SECONDS", "4"), ("PAYMENT_TIMEOUT_SECONDS", "4")];
    let mut stack = Stack::with_payments(&overrides).await;
    let notifier = stack.start_notifier(&[]).await;
    let out = loadgen(
        &stack,
        Some(&notifier),
        &[
            "hot-section",
            "--seats",
            "50",
            "--buyers",
            "80",
            "--vus",
            "16",
            "--ws",
            "3",
            "--visa-share",
            "0.7",
            "--pgbench-seconds",
            "2",
        ],
    )
    .await;
    for line in [
        "pgbench reference:",
        "holds answered:",
        "relay and projections caught up",
        "fan-out:",
        "correctness:",
    ] {
        assert!(out.contains(line), "the report has `{line}`");
    }
    assert!(out.contains("no seat in two confirmed bookings: OK"));
}

#[tokio::test]
async fn a_small_queue_run_passes_the_load_generators_checks() {
    let mut stack = Stack::start().await;
    stack.start_admitter().await;
    let out = loadgen(
        &stack,
        None,
        &[
            "--no-pgbench",
            "queue",
            "--users",
            "300",
            "--concurrency",
            "32",
            "--admit-per-minute",
            "1200",
            "--observe-seconds",
            "3",
        ],
    )
    .await;
    assert!(out.contains("joins/s (0 failed)"), "{out}");
    assert!(
        out.contains("distinct ordinals, last Some(300): OK"),
        "{out}"
    );
    assert!(out.contains("in joining order: OK"), "{out}");
}

#[tokio::test]
async fn a_small_random_ids_run_gets_the_documented_refusal_for_every_made_up_id() {
    let stack = Stack::start().await;
    let pid = stack.api.as_ref().expect("api").pid().to_string();
    let out = loadgen(
        &stack,
        None,
        &[
            "random-ids",
            "--requests",
            "3000",
            "--accounts",
            "40",
            "--pid",
            &pid,
        ],
    )
    .await;
    assert!(out.contains("unexpected answers: 0"), "{out}");
    assert!(out.contains("after 3000"), "{out}");
}
