//! Evidence kept for incidents: each item whole with its hash, written a collection at a
//! time; a collection written again (a step retried after a crash) keeps the first copy.

use sqlx::Row;

use super::{Store, StoreError, WriteLock};
use crate::domain::evidence::{Item, Kind};

impl Store {
    /// Keeps a collection's items under `incident_id`, all or none. Items the collection
    /// already holds stay as they were; the ones this call added are returned.
    ///
    /// # Errors
    /// The database error; nothing is kept then.
    pub async fn keep_evidence(
        &self,
        incident_id: &str,
        collection: &str,
        items: &[Item],
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin_write(WriteLock::Evidence).await?;
        let mut added = 0;
        for i in items {
            let done = sqlx::query(
                "INSERT INTO evidence (incident_id, collection, name, kind, content, bytes, sha256, truncated, collected_at_ms, collected_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (collection, name) DO NOTHING",
            )
            .bind(incident_id)
            .bind(collection)
            .bind(&i.name)
            .bind(i.kind.name())
            .bind(&i.content)
            .bind(i64::try_from(i.bytes).unwrap_or(i64::MAX))
            .bind(&i.sha256)
            .bind(i64::from(i.truncated))
            .bind(i.collected_at_ms)
            .bind(&i.collected_by)
            .execute(&mut *tx)
            .await?;
            added += usize::from(done.rows_affected() > 0);
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Every item kept for an incident, oldest collection first, with its content.
    ///
    /// # Errors
    /// The database error, or a row that no longer reads.
    pub async fn evidence(&self, incident_id: &str) -> Result<Vec<Item>, StoreError> {
        self.evidence_items(incident_id, "content").await
    }

    /// [`Store::evidence`] without the contents (empty), for a listing: a collection can
    /// hold megabytes.
    ///
    /// # Errors
    /// As [`Store::evidence`].
    pub async fn evidence_list(&self, incident_id: &str) -> Result<Vec<Item>, StoreError> {
        self.evidence_items(incident_id, "'' AS content").await
    }

    async fn evidence_items(
        &self,
        incident_id: &str,
        content: &'static str,
    ) -> Result<Vec<Item>, StoreError> {
        let sql = format!(
            "SELECT name, kind, {content}, bytes, sha256, truncated, collected_at_ms, collected_by \
             FROM evidence WHERE incident_id = $1 ORDER BY collected_at_ms, collection, name"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let bytes: i64 = r.try_get("bytes")?;
                let truncated: i64 = r.try_get("truncated")?;
                Ok(Item {
                    name: r.try_get("name")?,
                    kind: Kind::parse(&kind)
                        .ok_or_else(|| StoreError::Corrupt(format!("evidence kind {kind:?}")))?,
                    content: r.try_get("content")?,
                    bytes: usize::try_from(bytes).unwrap_or(0),
                    sha256: r.try_get("sha256")?,
                    truncated: truncated != 0,
                    collected_at_ms: r.try_get("collected_at_ms")?,
                    collected_by: r.try_get("collected_by")?,
                })
            })
            .collect()
    }
}
