//! Checklists and their ticks. A tick is a compare-and-set on the whole state, so two
//! people (or replicas) ticking at once never lose one another's tick.

use jiff::Timestamp;
use sqlx::Row;

use super::incidents::ms;
use super::{Store, StoreError};
use crate::domain::checklist::Checklist;
use crate::idgen::IdGen;

fn encode(done: &[Option<String>]) -> String {
    serde_json::to_string(done).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Records a new checklist (not yet posted).
    ///
    /// # Errors
    /// The database error.
    pub async fn create_checklist(
        &self,
        name: &str,
        title: &str,
        items: &[String],
        incident_id: Option<&str>,
        channel: &str,
        now: Timestamp,
    ) -> Result<Checklist, StoreError> {
        let id = IdGen::process().next("cl", now);
        let done = vec![None; items.len()];
        sqlx::query(
            "INSERT INTO checklists (id, name, title, incident_id, channel, items, done, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(name)
        .bind(title)
        .bind(incident_id)
        .bind(channel)
        .bind(serde_json::to_string(items).unwrap_or_else(|_| "[]".into()))
        .bind(encode(&done))
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(Checklist {
            id,
            name: name.to_owned(),
            title: title.to_owned(),
            items: items.to_vec(),
            done,
        })
    }

    /// Remembers where the checklist was posted.
    ///
    /// # Errors
    /// The database error.
    pub async fn set_checklist_ts(&self, id: &str, ts: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE checklists SET ts = $2 WHERE id = $1")
            .bind(id)
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A checklist with where it was posted: `(list, channel, ts)`.
    ///
    /// # Errors
    /// The database error, or unreadable stored state.
    pub async fn checklist(
        &self,
        id: &str,
    ) -> Result<Option<(Checklist, String, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, title, channel, ts, items, done FROM checklists WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let corrupt = |e: serde_json::Error| StoreError::Corrupt(format!("checklist {id}: {e}"));
        let items: Vec<String> =
            serde_json::from_str(&r.try_get::<String, _>("items")?).map_err(corrupt)?;
        let done: Vec<Option<String>> =
            serde_json::from_str(&r.try_get::<String, _>("done")?).map_err(corrupt)?;
        Ok(Some((
            Checklist {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                title: r.try_get("title")?,
                items,
                done,
            },
            r.try_get("channel")?,
            r.try_get("ts")?,
        )))
    }

    /// Toggles item `index` for `user`; retried when someone else ticked meanwhile.
    /// `None` when the checklist or the item does not exist.
    ///
    /// # Errors
    /// The database error.
    pub async fn toggle_checklist_item(
        &self,
        id: &str,
        index: usize,
        user: &str,
        now: Timestamp,
    ) -> Result<Option<(Checklist, String, Option<String>)>, StoreError> {
        for _ in 0..5 {
            let Some((list, channel, ts)) = self.checklist(id).await? else {
                return Ok(None);
            };
            let Some(next) = list.toggled(index, user) else {
                return Ok(None);
            };
            let done = sqlx::query(
                "UPDATE checklists SET done = $3, updated_at_ms = $4 WHERE id = $1 AND done = $2",
            )
            .bind(id)
            .bind(encode(&list.done))
            .bind(encode(&next.done))
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                return Ok(Some((next, channel, ts)));
            }
        }
        Err(StoreError::Corrupt(format!(
            "checklist {id} kept changing under five attempts"
        )))
    }
}
