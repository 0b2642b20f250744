//! Least privilege in PostgreSQL. The schema owner runs the migrations (and the replay CLI,
//! which creates and swaps tables); the services can run as an application role that holds
//! only the DML they use: rows of every table, but the event store is append-only to it, and
//! it can create, alter or drop nothing. A service connected as such a role does not migrate;
//! it checks that the owner has applied every migration and refuses to start otherwise.

use anyhow::Context;
use sqlx::PgPool;

/// Grants `role` the application's privileges on the current database, now and for the
/// tables and sequences the calling owner creates later (new migrations, replay swaps).
/// Idempotent; run by the schema owner after migrating (`projections migrate --grant-to`).
pub async fn grant_application_role(pool: &PgPool, role: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !role.is_empty() && role.len() <= 63,
        "a role name has 1 to 63 bytes"
    );
    let role = quote_ident(role);
    let statements = [
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        // The event store is the source of truth: the services append and read it, never
        // rewrite it.
        format!("REVOKE UPDATE, DELETE, TRUNCATE ON events FROM {role}"),
        // Migrations are the owner's business; the role only checks none is pending.
        format!("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON _sqlx_migrations FROM {role}"),
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public \
             GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        ),
    ];
    let mut tx = pool.begin().await?;
    for statement in statements {
        sqlx::query(&statement)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("cannot grant the application role: {statement}"))?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether the connected role may create tables (the owner) or only use them.
pub async fn may_migrate(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT has_schema_privilege('public', 'CREATE')")
        .fetch_one(pool)
        .await
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn identifiers_are_quoted_so_a_name_cannot_inject_sql() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(
            quote_ident("a\"; DROP TABLE events; --"),
            "\"a\"\"; DROP TABLE events; --\""
        );
    }
}
