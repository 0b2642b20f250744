//! The relay's checkpoint over the shared feed (`plumbing::feed`).

pub use plumbing::feed::{Cursor, StoredEvent, next_batch};
use sqlx::PgConnection;

/// The relay checkpoint named `name`.
pub struct Checkpoint;

impl Checkpoint {
    pub async fn load(conn: &mut PgConnection, name: &str) -> Result<Cursor, sqlx::Error> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT transaction_id::text, global_position FROM relay_checkpoint WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(match row {
            Some((transaction_id, global_position)) => Cursor {
                transaction_id,
                global_position,
            },
            None => Cursor::default(),
        })
    }

    pub async fn save(
        cursor: &Cursor,
        conn: &mut PgConnection,
        name: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO relay_checkpoint (name, transaction_id, global_position)
             VALUES ($1, $2::text::xid8, $3)
             ON CONFLICT (name) DO UPDATE
                SET transaction_id = EXCLUDED.transaction_id,
                    global_position = EXCLUDED.global_position,
                    updated_at = now()",
        )
        .bind(name)
        .bind(&cursor.transaction_id)
        .bind(cursor.global_position)
        .execute(conn)
        .await?;
        Ok(())
    }
}
