//! Connection pools and the schema migrations every process runs at start.

use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use sqlx::PgPool;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The shared tables: event store, consumers, HTTP, saga, waiting room, mail.
static SHARED: Migrator = sqlx::migrate!("./migrations");
/// The read models' tables live beside the models, in the projections crate.
static READ_MODELS: Migrator = sqlx::migrate!("../projections/migrations");

/// Every migration of the database, from both directories, in version order: one set,
/// whichever process applies it (versions are unique across the two).
#[derive(Debug)]
struct Combined;

impl MigrationSource<'static> for Combined {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async {
            let mut all: Vec<Migration> =
                SHARED.iter().chain(READ_MODELS.iter()).cloned().collect();
            all.sort_by_key(|m| m.version);
            Ok(all)
        })
    }
}

/// The database's migrator.
pub async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Combined).await
}

/// Connects and applies pending migrations. sqlx takes an advisory lock while migrating, so
/// several processes starting at once are safe. A role that may not create tables (the
/// application role, see `privileges`) only checks that nothing is pending.
pub async fn connect(database_url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = database_url
        .parse::<PgConnectOptions>()
        .context("DATABASE_URL is not a valid PostgreSQL URL")?
        // Every statement here is prepared once per connection and then executed with
        // arrays of varying length; PostgreSQL kept planning them afresh for each call
        // (custom plans look cheaper for known array sizes): the store's append planned in
        // 0.3–1.2 ms and executed in 0.1 ms, and planning was most of the server's CPU
        // under load. Our statements are key lookups and array joins whose generic plans
        // are the ones we want.
        .options([("plan_cache_mode", "force_generic_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .context("cannot connect to PostgreSQL")?;
    let migrator = migrator()
        .await
        .context("cannot assemble the database migrations")?;
    if crate::privileges::may_migrate(&pool).await? {
        migrator
            .run(&pool)
            .await
            .context("cannot apply database migrations")?;
    } else {
        ensure_migrated(&pool, &migrator).await?;
    }
    Ok(pool)
}

/// For an application role, which cannot migrate: every migration must have been applied
/// by the schema owner already.
async fn ensure_migrated(pool: &PgPool, migrator: &Migrator) -> anyhow::Result<()> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await
            .context(
                "this role may not create tables and the database has no migrations applied: \
                 run `projections migrate` as the schema owner first",
            )?;
    let pending = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
        .count();
    anyhow::ensure!(
        pending == 0,
        "{pending} database migration(s) pending, and this role may not apply them: run \
         `projections migrate --grant-to <this role>` as the schema owner"
    );
    Ok(())
}

/// A stable 64-bit advisory-lock key for `name` in `namespace` (FNV-1a: the same in every
/// process and build, unlike std's randomised hasher).
pub fn advisory_key(namespace: &str, name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("ticketing-{namespace}:{name}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}
