//! The on-sale scenarios: set up events, seed buyers, optionally connect WebSocket
//! watchers, drive holds and payments, then report throughput, latencies, lag, fan-out and
//! correctness, with the pgbench reference at the same concurrency.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use crate::Target;
use crate::api::Api;
use crate::drive::{self, Picker, Plan};
use crate::record::Recorder;
use crate::setup::{self, Event};
use crate::watch::{self, E2E, E2eTracker, Watchers};

/// Options every on-sale scenario shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Virtual users (concurrent buyers).
    #[arg(long)]
    pub vus: Option<usize>,
    /// Buyers seeded (registered and logged in).
    #[arg(long)]
    pub buyers: Option<usize>,
    /// Upper bound on the driving phase.
    #[arg(long, default_value_t = 60)]
    pub max_seconds: u64,
    /// Share of holds that are paid for.
    #[arg(long)]
    pub pay_share: Option<f64>,
    /// Share of payments made with tok_visa (the rest tok_decline).
    #[arg(long)]
    pub visa_share: Option<f64>,
    /// Hold seats next to each other rather than scattered.
    #[arg(long)]
    pub adjacent: bool,
    /// WebSocket connections subscribed to the (first) event.
    #[arg(long)]
    pub ws: Option<usize>,
    /// Time hold → frame latency on every n-th WebSocket connection (from the first).
    #[arg(long, default_value_t = 100)]
    pub ws_sample_every: usize,
    /// The notifier's process id, to report its memory per connection.
    #[arg(long, env = "NOTIFIER_PID")]
    pub notifier_pid: Option<u32>,
    /// pgbench duration.
    #[arg(long, default_value_t = 10)]
    pub pgbench_seconds: u64,
    /// Do not wait for every hold and payment deadline before the "nothing held" check.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct UncontendedArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 8)]
    pub events: usize,
}

#[derive(Debug, Args)]
pub struct HotSectionArgs {
    #[command(flatten)]
    pub common: Common,
    /// Seats in the hot section (rows of 50).
    #[arg(long, default_value_t = 1_000)]
    pub seats: u32,
}

#[derive(Debug, Args)]
pub struct MixedArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1_000)]
    pub seats: u32,
}

/// Sections of `rows` × `per_row` seats named `s0`, `s1`, ….
fn seated_sections(count: usize, rows: u32, per_row: u32) -> Value {
    let sections: Vec<Value> = (0..count)
        .map(|s| {
            let rows: Vec<Value> = (0..rows)
                .map(|r| json!({"row": format!("R{r}"), "seats": per_row}))
                .collect();
            json!({"section_id": format!("s{s}"), "name": format!("Section {s}"),
                   "kind": "seated", "rows": rows})
        })
        .collect();
    json!({"sections": sections})
}

pub async fn uncontended(target: &Target, args: UncontendedArgs) -> anyhow::Result<bool> {
    let vus = args.common.vus.unwrap_or(64);
    let stage = Stage::new(target).await?;
    let organizer = setup::organizer(&stage.api, target, &stage.run).await?;
    let sections_per_event = vus.div_ceil(args.events.max(1));
    let mut events = Vec::new();
    for e in 0..args.events.max(1) {
        events.push(
            setup::event(
                &stage.api,
                &organizer,
                &format!("Uncontended {e}"),
                seated_sections(sections_per_event, 40, 50),
                None,
            )
            .await?,
        );
    }
    let picker = Picker::dedicated(&events, vus);
    let common = Common {
        pay_share: Some(args.common.pay_share.unwrap_or(0.0)),
        ..args.common
    };
    stage
        .execute(
            target,
            events,
            picker,
            &common,
            vus,
            common.buyers.unwrap_or(vus * 4),
            true,
        )
        .await
}

pub async fn hot_section(target: &Target, args: HotSectionArgs) -> anyhow::Result<bool> {
    let stage = Stage::new(target).await?;
    let events = vec![hot_event(&stage, target, args.seats).await?];
    let picker = Picker::random(events.clone(), |_| 1.0, args.common.adjacent);
    let vus = args.common.vus.unwrap_or(256);
    let buyers = args.common.buyers.unwrap_or(5_000);
    stage
        .execute(target, events, picker, &args.common, vus, buyers, false)
        .await
}

pub async fn fanout(target: &Target, args: FanoutArgs) -> anyhow::Result<bool> {
    let stage = Stage::new(target).await?;
    let events = vec![hot_event(&stage, target, args.seats).await?];
    let picker = Picker::random(events.clone(), |_| 1.0, args.common.adjacent);
    let common = Common {
        ws: Some(args.common.ws.unwrap_or(10_000)),
        ..args.common
    };
    let vus = common.vus.unwrap_or(256);
    let buyers = common.buyers.unwrap_or(5_000);
    stage
        .execute(target, events, picker, &common, vus, buyers, false)
        .await
}

pub async fn mixed(target: &Target, args: MixedArgs) -> anyhow::Result<bool> {
    let stage = Stage::new(target).await?;
    let organizer = setup::organizer(&stage.api, target, &stage.run).await?;
    let arena = setup::event(
        &stage.api,
        &organizer,
        "Mixed on-sale",
        json!({"template_id": "arena"}),
        None,
    )
    .await?;
    // 80% of buyers on the first two sections, the rest spread over the others.
    let hot: Vec<String> = arena
        .sections
        .iter()
        .take(2)
        .map(|s| s.section_id.clone())
        .collect();
    let cold = (arena.sections.len() - 2).max(1) as f64;
    let picker = Picker::random(
        vec![arena.clone()],
        move |s| {
            if hot.contains(&s.section_id) {
                0.4
            } else {
                0.2 / cold
            }
        },
        args.common.adjacent,
    );
    let common = Common {
        visa_share: Some(args.common.visa_share.unwrap_or(0.9)),
        ..args.common
    };
    let vus = common.vus.unwrap_or(256);
    let buyers = common.buyers.unwrap_or(5_000);
    stage
        .execute(target, vec![arena], picker, &common, vus, buyers, false)
        .await
}

async fn hot_event(stage: &Stage, target: &Target, seats: u32) -> anyhow::Result<Event> {
    let organizer = setup::organizer(&stage.api, target, &stage.run).await?;
    let rows = seats.div_ceil(50).max(1);
    setup::event(
        &stage.api,
        &organizer,
        "Hot section",
        seated_sections(1, rows, seats.min(50)),
        None,
    )
    .await
}

/// What every scenario shares: the run id, the API client, the database, the recorder.
struct Stage {
    run: String,
    api: Api,
    pool: sqlx::PgPool,
}

impl Stage {
    async fn new(target: &Target) -> anyhow::Result<Self> {
        Ok(Self {
            run: super::run_id(),
            api: Api::new(&target.api, Recorder::default())?,
            pool: plumbing::db::connect(&target.database_url, 4).await?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        target: &Target,
        events: Vec<Event>,
        picker: Picker,
        common: &Common,
        vus: usize,
        buyers: usize,
        recycle: bool,
    ) -> anyhow::Result<bool> {
        let reference = if target.no_pgbench {
            None
        } else {
            Some(
                crate::pgbench::reference(
                    &self.pool,
                    &target.database_url,
                    vus,
                    common.pgbench_seconds,
                )
                .await?,
            )
        };
        let seeded = setup::buyers(&self.api, &self.run, buyers, 32).await?;
        // Seeding is not part of the measured run.
        let recorder = Recorder::default();
        let api = Api {
            recorder: recorder.clone(),
            ..self.api.clone()
        };

        let tracker = Arc::new(E2eTracker::default());
        let mut watchers = None;
        let ws = common.ws.unwrap_or(0);
        let notifier_pid = common.notifier_pid;
        let rss_before = notifier_pid.and_then(watch::rss_kib);
        if ws > 0 {
            let tokens: Vec<String> = seeded.iter().map(|b| b.token.clone()).collect();
            let connected = Watchers::connect(
                &target.notifier,
                &tokens,
                ws,
                common.ws_sample_every,
                &events[0].id,
                tracker.clone(),
                recorder.clone(),
            )
            .await?;
            if let (Some(before), Some(after)) = (rss_before, notifier_pid.and_then(watch::rss_kib))
            {
                println!(
                    "notifier RSS {} MiB → {} MiB with {ws} idle connections: {:.1} KiB per connection",
                    before / 1024,
                    after / 1024,
                    after.saturating_sub(before) as f64 / ws as f64
                );
            }
            watchers = Some(connected);
        }
        let cpu_before = Cpu::now(notifier_pid);

        let plan = Plan {
            picker,
            vus,
            attempts: 3,
            pay_share: common.pay_share.unwrap_or(1.0),
            visa_share: common.visa_share.unwrap_or(1.0),
            duration: Duration::from_secs(common.max_seconds),
            recycle,
        };
        let statements = crate::statements::start(&self.pool).await;
        let started_at = chrono::Utc::now();
        let outcome = drive::drive(&api, &seeded, &plan, (ws > 0).then(|| tracker.clone())).await;
        let stopped = std::time::Instant::now();
        let cpu = Cpu::now(notifier_pid).since(&cpu_before);
        println!("--- results ---");
        drive::print(&outcome);
        if let Some(tps) = reference {
            println!(
                "holds created {:.0}/s = {:.2}× the pgbench reference ({tps:.0}/s); \
                 answered {:.0}/s = {:.2}×",
                outcome.created_per_second(),
                outcome.created_per_second() / tps,
                outcome.answered_per_second(),
                outcome.answered_per_second() / tps,
            );
        }
        cpu.print();
        crate::checks::lag_after_load(&self.pool).await?;
        if let Some(watchers) = &watchers {
            let frames = watchers.frames.load(std::sync::atomic::Ordering::Relaxed);
            let stats: Value = api
                .http
                .get(format!("{}/stats", target.notifier_ops))
                .send()
                .await?
                .json()
                .await?;
            println!(
                "fan-out: {frames} frames to {} clients ({:.0} frames/s over the run), \
                 dropped slow clients {}, resyncs {}, closed {}",
                watchers.connected,
                frames as f64 / outcome.elapsed.as_secs_f64(),
                stats["dropped_slow_clients"],
                stats["resyncs"],
                watchers.closed.load(std::sync::atomic::Ordering::Relaxed),
            );
            if let (Some(before), Some(peak)) =
                (rss_before, notifier_pid.and_then(watch::peak_rss_kib))
            {
                println!(
                    "notifier peak RSS {} MiB under load: {:.1} KiB per connection above its {} MiB before connecting",
                    peak / 1024,
                    peak.saturating_sub(before) as f64 / ws as f64,
                    before / 1024,
                );
            }
            if let Some(p99) = recorder.p99(E2E) {
                println!(
                    "command → WebSocket frame p99 {:.1} ms ({} frames timed on {} of {} sockets)",
                    p99.as_secs_f64() * 1e3,
                    recorder.count(E2E),
                    watchers.timed,
                    watchers.connected,
                );
            }
        }
        recorder.print();
        let quiet = if common.no_wait {
            Duration::ZERO
        } else {
            Duration::from_secs(target.hold_ttl_seconds + target.payment_timeout_seconds + 5)
                .saturating_sub(stopped.elapsed())
                .max(Duration::from_millis(1))
        };
        let mut correct = crate::checks::correctness(&self.pool, &events, quiet).await?;
        if let Some(watchers) = watchers {
            // The frames of the last expiries may still be on their way: poll until the maps
            // agree with the store, or a deadline.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let (agree, line) = loop {
                let maps = watchers.seat_maps();
                let (agree, line) =
                    crate::checks::watchers_agree(&self.pool, &events[0], &maps).await?;
                if agree || std::time::Instant::now() >= deadline {
                    break (agree, line);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            };
            println!("{line}");
            correct &= agree;
            watchers.close();
        }
        if let Some(baseline) = &statements {
            crate::statements::report(&self.pool, baseline, outcome.holds_created).await?;
        }
        // Payments confirm after the driving stops; by now every one is final.
        if let Some(last) = crate::checks::last_confirmation(&self.pool, &events).await? {
            let sold: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM ticket_view WHERE event_id::text = ANY($1)",
            )
            .bind(events.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
            .fetch_one(&self.pool)
            .await?;
            let seconds = (last - started_at).as_seconds_f64().max(1e-3);
            println!(
                "seats sold: {sold} in {seconds:.1} s = {:.0}/s",
                sold as f64 / seconds
            );
        }
        Ok(correct)
    }
}

/// CPU time of loadgen itself and of the notifier, to tell whose figure a run measures.
struct Cpu {
    at: std::time::Instant,
    loadgen: Duration,
    notifier: Option<(u32, Duration)>,
}

/// What the driving phase cost each process.
struct CpuUsed {
    wall: Duration,
    loadgen: Duration,
    notifier: Option<Duration>,
}

impl Cpu {
    fn now(notifier: Option<u32>) -> Self {
        Self {
            at: std::time::Instant::now(),
            loadgen: watch::cpu_time(std::process::id()).unwrap_or_default(),
            notifier: notifier.and_then(|pid| Some((pid, watch::cpu_time(pid)?))),
        }
    }

    fn since(&self, before: &Cpu) -> CpuUsed {
        CpuUsed {
            wall: self.at.saturating_duration_since(before.at),
            loadgen: self.loadgen.saturating_sub(before.loadgen),
            notifier: self
                .notifier
                .zip(before.notifier)
                .map(|((_, now), (_, then))| now.saturating_sub(then)),
        }
    }
}

impl CpuUsed {
    fn print(&self) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let share = |used: Duration| {
            100.0 * used.as_secs_f64() / (self.wall.as_secs_f64() * cores).max(1e-9)
        };
        print!(
            "CPU over the {:.1} s of load ({cores} cores): loadgen {:.1} s = {:.0}% of the machine",
            self.wall.as_secs_f64(),
            self.loadgen.as_secs_f64(),
            share(self.loadgen),
        );
        match self.notifier {
            Some(notifier) => println!(
                ", notifier {:.1} s = {:.0}%",
                notifier.as_secs_f64(),
                share(notifier)
            ),
            None => println!(),
        }
    }
}
