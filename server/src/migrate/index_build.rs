//! Online index builds: every index of `db::schema::INDEXES` missing on a
//! file is built while meshscope serves, in bounded units, never by one
//! `CREATE INDEX` (which holds the writer for the whole table: 24.9 s on
//! 14.75M sightings here).
//!
//! Design (gh-ost's, on SQLite's b-trees). A build of index `I` on table `T`:
//! 1. **Start** (one short transaction, with the run's id range): a shadow
//!    table `_meshscope_ix_I_<n>` (`id INTEGER PRIMARY KEY` plus the
//!    columns `I` reads, declared as `T` declares them, so values keep their
//!    affinity), an index on it with `I`'s key, expression, `WHERE` and
//!    uniqueness, and three triggers on `T` that keep it in step with every
//!    write after that instant (insert, update of a column it reads,
//!    delete). The triggers are stored in the file, so every writer keeps
//!    the shadow exact: meshscope's writer, `meshscope prune`, CoreScope or
//!    the `sqlite3` shell while meshscope is stopped.
//! 2. **Copy**: each unit copies `T`'s rows of one id range that the shadow
//!    lacks (a row a trigger already mirrored is current there). The
//!    shadow's index grows with it; queries never see it (it is not on `T`).
//! 3. **Swap**, in the transaction that records the run as done: the
//!    triggers are dropped and the shadow's index becomes `T`'s index `I`
//!    (its `sqlite_schema` row renamed and moved to `T`, the documented
//!    `writable_schema` edit: an index b-tree holds (key..., rowid) whatever
//!    table it is declared on, and the shadow's rowid is `T`'s). Dropping
//!    the triggers bumps the schema cookie, so every reader loads the new
//!    schema at its next read. Milliseconds, whatever the table's size.
//! 4. **Clean up**: the shadow table, now without index or triggers, is
//!    deleted in bounded units by [`Cleanup`] and dropped once empty.
//!
//! A kill at any instant: before the swap commits, `T` has no index `I` and
//! the shadow, its triggers and the cursor are where the last commit left
//! them (the run resumes); after, the index is whole. A cancel or a failure
//! drops the triggers at once and leaves the shadow to [`Cleanup`]. A unique
//! index whose rows are not unique fails the run, naming the index.
//!
//! Cost (measured by `meshscope bench`): disk for the shadow table and its
//! index until clean-up (about twice the index), the copy's WAL (bounded
//! like every job's, see `db::wal`), and wall time a few times a plain
//! `CREATE INDEX`. A table that declares a collation is refused (the shadow
//! could not match it); `meshscope migrate --offline-indexes` builds with
//! `CREATE INDEX` while nothing else runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension};
use shared::migration::{Control, MigrationInfo, MigrationRecord, MigrationStatus};

use super::job::{Cx, Job};
use super::sizer::BatchSizer;
use super::unit::{rest, Outcome};
use super::{ControlError, Migration, MigrationError, Need};
use crate::clock::{now_ms, now_text};
use crate::db::schema::IndexSpec;
use crate::store::Upkeep;

/// Prefix of every shadow table (and of its index and triggers).
pub const SHADOW_PREFIX: &str = "_meshscope_ix_";
/// The name [`Cleanup`] shows under.
pub const CLEANUP: &str = "index_cleanup";

/// The build of one expected index.
pub struct IndexBuild {
    spec: &'static IndexSpec,
}

impl IndexBuild {
    pub fn new(spec: &'static IndexSpec) -> IndexBuild {
        IndexBuild { spec }
    }

    fn present(&self, conn: &Connection) -> rusqlite::Result<bool> {
        crate::db::has_index_on(conn, self.spec.table, self.spec.columns)
    }

    /// The shadow whose triggers are in place (the run's), if any.
    fn current(&self, conn: &Connection) -> rusqlite::Result<Option<String>> {
        Ok(self
            .triggers(conn)?
            .into_iter()
            .filter_map(|t| t.strip_suffix("_ins").map(str::to_string))
            .max())
    }

    /// The triggers of this index's shadows, matched exactly (one index's
    /// name may begin another's: `idx_observations_observer_idx` and
    /// `idx_observations_observer_idx_timestamp`).
    fn triggers(&self, conn: &Connection) -> rusqlite::Result<Vec<String>> {
        let names: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_schema
                 WHERE type = 'trigger' AND substr(name, 1, length(?1)) = ?1",
            )?
            .query_map([SHADOW_PREFIX], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names
            .into_iter()
            .filter(|n| shadow_index(n) == Some(self.spec.name))
            .collect())
    }

    /// Creates a shadow with its index and triggers (see the module header).
    fn create_shadow(&self, conn: &Connection) -> Result<String, MigrationError> {
        let spec = self.spec;
        let table_sql: String = conn.query_row(
            "SELECT COALESCE(sql, '') FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [spec.table],
            |r| r.get(0),
        )?;
        if table_sql.to_ascii_uppercase().contains("COLLATE") {
            return Err(MigrationError::Refused(format!(
                "{} declares a collation, which a shadow cannot match; build {} offline \
                 (`meshscope migrate --offline-indexes`)",
                spec.table, spec.name
            )));
        }
        let mut decls = Vec::with_capacity(spec.uses.len());
        for col in spec.uses {
            let decl: Option<String> = conn
                .query_row(
                    "SELECT type FROM pragma_table_info(?1) WHERE name = ?2",
                    params![spec.table, col],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(decl) = decl else {
                return Err(MigrationError::Refused(format!(
                    "{} has no column {col}, which {} reads",
                    spec.table, spec.name
                )));
            };
            decls.push(format!("\"{col}\" {decl}"));
        }
        // A shadow left by an earlier run may still be being cleaned up:
        // each run's has its own start time in its name.
        let shadow = format!("{SHADOW_PREFIX}{}_{}", spec.name, now_ms());
        let cols = columns(spec, "id");
        let new_vals = spec
            .uses
            .iter()
            .map(|c| format!("NEW.\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let watched = std::iter::once("id")
            .chain(spec.uses.iter().copied())
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let t = spec.table;
        conn.execute_batch(&format!(
            "CREATE TABLE {shadow} (id INTEGER PRIMARY KEY{sep}{decls});
             {index};
             CREATE TRIGGER {shadow}_ins AFTER INSERT ON {t} BEGIN
                 INSERT INTO {shadow} ({cols}) VALUES (NEW.rowid{sep}{new_vals});
             END;
             CREATE TRIGGER {shadow}_upd AFTER UPDATE OF {watched} ON {t} BEGIN
                 DELETE FROM {shadow} WHERE id = OLD.rowid;
                 INSERT INTO {shadow} ({cols}) VALUES (NEW.rowid{sep}{new_vals});
             END;
             CREATE TRIGGER {shadow}_del AFTER DELETE ON {t} BEGIN
                 DELETE FROM {shadow} WHERE id = OLD.rowid;
             END;",
            sep = if spec.uses.is_empty() { "" } else { ", " },
            decls = decls.join(", "),
            index = shadow_index_sql(spec, &shadow),
        ))?;
        Ok(shadow)
    }

    /// Drops the triggers of every shadow of this index (the tables are
    /// [`Cleanup`]'s).
    fn drop_triggers(&self, conn: &Connection) -> rusqlite::Result<()> {
        let names = self.triggers(conn)?;
        for name in names {
            conn.execute_batch(&format!("DROP TRIGGER IF EXISTS \"{name}\""))?;
        }
        LOOK_AGAIN.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// The index a shadow's table or trigger belongs to: the names are
/// `_meshscope_ix_<index>_<digits>` (then `_ins`, `_upd`, `_del`, `_idx`).
fn shadow_index(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(SHADOW_PREFIX)?;
    let rest = ["_ins", "_upd", "_del", "_idx"]
        .iter()
        .find_map(|s| rest.strip_suffix(s))
        .unwrap_or(rest);
    let (index, generation) = rest.rsplit_once('_')?;
    (!generation.is_empty() && generation.bytes().all(|b| b.is_ascii_digit())).then_some(index)
}

/// `first, "c1", "c2"`: the rowid (`id` in the shadow, `rowid` in the
/// table) and the columns the index reads.
fn columns(spec: &IndexSpec, first: &str) -> String {
    std::iter::once(first.to_string())
        .chain(spec.uses.iter().map(|c| format!("\"{c}\"")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The index as `sqlite_schema` keeps it (`CREATE [UNIQUE] INDEX name ON table(...)`).
pub(crate) fn stored_sql(spec: &IndexSpec) -> String {
    spec.create_sql.replacen(" IF NOT EXISTS", "", 1)
}

/// `spec`'s index declared on `shadow` instead, under the shadow's name.
fn shadow_index_sql(spec: &IndexSpec, shadow: &str) -> String {
    stored_sql(spec).replacen(
        &format!("{} ON {}(", spec.name, spec.table),
        &format!("{shadow}_idx ON {shadow}("),
        1,
    )
}

impl Migration for IndexBuild {
    // The migration is named after its job, not its index.
    #[allow(clippy::misnamed_getters)]
    fn name(&self) -> &'static str {
        self.spec.job
    }

    fn needed(&self, conn: &Connection) -> rusqlite::Result<Need> {
        Ok(if self.present(conn)? {
            Need::No
        } else {
            Need::Yes
        })
    }

    fn start(&self, conn: &Connection) -> Result<(), MigrationError> {
        self.drop_triggers(conn)?;
        if !self.present(conn)? {
            self.create_shadow(conn)?;
        }
        Ok(())
    }

    fn max_id(&self, conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row(
            &format!("SELECT COALESCE(MAX(rowid), 0) FROM {}", self.spec.table),
            [],
            |r| r.get(0),
        )
    }

    fn count(&self, conn: &Connection, max_id: i64) -> rusqlite::Result<i64> {
        if self.present(conn)? {
            return Ok(0);
        }
        conn.query_row(
            &format!("SELECT COUNT(*) FROM {} WHERE rowid <= ?1", self.spec.table),
            [max_id],
            |r| r.get(0),
        )
    }

    fn chunk(
        &self,
        conn: &Connection,
        after: i64,
        upto: i64,
        _upkeep: Upkeep,
    ) -> Result<i64, MigrationError> {
        let shadow = match self.current(conn)? {
            Some(s) => s,
            // The pre-flight sample (rolled back) runs before the start.
            None if after == 0 && !self.present(conn)? => self.create_shadow(conn)?,
            None if self.present(conn)? => return Ok(0),
            None => {
                return Err(MigrationError::Refused(format!(
                    "the shadow of {} is gone (its triggers were dropped); retry builds it again",
                    self.spec.name
                )))
            }
        };
        let t = self.spec.table;
        let cols = columns(self.spec, "id");
        let src = columns(self.spec, "rowid");
        let copied = conn
            .prepare_cached(&format!(
                "INSERT INTO {shadow} ({cols})
             SELECT {src} FROM {t} s WHERE s.rowid > ?1 AND s.rowid <= ?2
               AND NOT EXISTS (SELECT 1 FROM {shadow} WHERE id = s.rowid)"
            ))?
            .execute(params![after, upto]);
        if let Err(e) = &copied {
            if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) {
                return Err(MigrationError::Refused(format!(
                    "{t} holds rows {} does not allow ({e}); merge them first",
                    self.spec.name
                )));
            }
        }
        // The rows copied (a row a trigger mirrored first is not counted
        // again; counting the range too cost a second pass over its pages).
        Ok(copied? as i64)
    }

    /// The swap (see the module header), in the transaction that records
    /// the run as done.
    fn finish(&self, conn: &Connection) -> Result<(), MigrationError> {
        let shadow = self.current(conn)?;
        self.drop_triggers(conn)?;
        if self.present(conn)? {
            // Nothing to build, or another program built it meanwhile.
            return Ok(());
        }
        let Some(shadow) = shadow else {
            return Err(MigrationError::Refused(format!(
                "the shadow of {} is gone (its triggers were dropped); retry builds it again",
                self.spec.name
            )));
        };
        conn.pragma_update(None, "writable_schema", "ON")?;
        let moved = conn.execute(
            "UPDATE sqlite_schema SET name = ?1, tbl_name = ?2, sql = ?3
             WHERE type = 'index' AND name = ?4 AND tbl_name = ?5",
            params![
                self.spec.name,
                self.spec.table,
                stored_sql(self.spec),
                format!("{shadow}_idx"),
                shadow
            ],
        );
        // RESET turns the edit mode off and reloads this connection's schema.
        let reset = conn.pragma_update(None, "writable_schema", "RESET");
        let moved = moved?;
        reset?;
        if moved != 1 {
            return Err(MigrationError::Refused(format!(
                "the shadow index of {} is missing; retry builds it again",
                self.spec.name
            )));
        }
        if !self.present(conn)? {
            return Err(MigrationError::Refused(format!(
                "{} is not on {} after the swap",
                self.spec.name, self.spec.table
            )));
        }
        tracing::info!(index = self.spec.name, table = self.spec.table, shadow = %shadow,
            "index built online and swapped in; the shadow table is cleaned up in chunks");
        Ok(())
    }

    fn abandon(&self, conn: &Connection) -> rusqlite::Result<()> {
        self.drop_triggers(conn)
    }
}

/// Shadow tables no build uses (no triggers): what is left after a swap,
/// a cancel or a failure.
fn orphans(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    conn.prepare(
        "SELECT t.name FROM sqlite_schema t
         WHERE t.type = 'table' AND substr(t.name, 1, length(?1)) = ?1
           AND NOT EXISTS (SELECT 1 FROM sqlite_schema g
                           WHERE g.type = 'trigger' AND g.name = t.name || '_ins')
         ORDER BY t.name",
    )?
    .query_map([SHADOW_PREFIX], |r| r.get(0))?
    .collect()
}

/// How long [`Cleanup`] waits after a failed look or unit.
const CLEANUP_LOOK: std::time::Duration = std::time::Duration::from_secs(2);

/// Set when a shadow may have been left (a swap, a cancel, a failure):
/// [`Cleanup`] looks once more. Shared by every engine of the process; a
/// look that finds nothing costs one read of `sqlite_schema`.
static LOOK_AGAIN: AtomicBool = AtomicBool::new(false);

/// Deletes the shadow tables no build uses, a bounded unit at a time, and
/// drops each once it is empty (a table that held millions of rows is
/// never dropped whole: that frees every page in one statement).
pub(crate) struct Cleanup {
    rec: MigrationRecord,
    sizer: BatchSizer,
    next_look: Option<Instant>,
    /// The table being emptied.
    doing: Option<String>,
}

impl Cleanup {
    pub(crate) fn new(cfg: &super::EngineConfig) -> Cleanup {
        Cleanup {
            rec: MigrationRecord::new(CLEANUP, MigrationStatus::Done),
            sizer: BatchSizer::new(cfg.budget, cfg.min_batch, cfg.max_batch),
            next_look: Some(Instant::now()),
            doing: None,
        }
    }

    fn set_status(&mut self, status: MigrationStatus, cx: &Cx<'_>) {
        if self.rec.status != status {
            self.rec.status = status;
            let now = now_text();
            if status == MigrationStatus::Running {
                self.rec.started_at = Some(now.clone());
                self.rec.ended_at = None;
                self.rec.rows_processed = 0;
            } else {
                self.rec.ended_at = Some(now.clone());
            }
            self.rec.last_update_at = Some(now);
            cx.live.set(&self.rec);
        }
    }
}

impl Job for Cleanup {
    fn name(&self) -> &str {
        CLEANUP
    }

    fn record(&self) -> &MigrationRecord {
        &self.rec
    }

    fn in_progress(&self) -> bool {
        false
    }

    fn due(&mut self, now: Instant, not_before: Option<Instant>) -> Option<Instant> {
        if LOOK_AGAIN.swap(false, Ordering::Relaxed) {
            self.next_look = Some(self.next_look.map_or(now, |t| t.min(now)));
        }
        match &self.doing {
            Some(_) => Some(now.max(not_before.unwrap_or(now))),
            None => self.next_look,
        }
    }

    fn unit(&mut self, conn: &mut Connection, cx: &mut Cx<'_>) {
        let Some(table) = self.doing.clone() else {
            self.next_look = None;
            match orphans(conn) {
                Ok(list) => {
                    if let Some(t) = list.into_iter().next() {
                        let rows: i64 = conn
                            .query_row(
                                &format!("SELECT COALESCE(MAX(id), 0) FROM \"{t}\""),
                                [],
                                |r| r.get(0),
                            )
                            .unwrap_or(0);
                        tracing::info!(table = %t, max_id = rows, "cleaning up a shadow table");
                        self.rec.rows_total = rows;
                        self.doing = Some(t);
                        self.set_status(MigrationStatus::Running, cx);
                    } else {
                        self.set_status(MigrationStatus::Done, cx);
                    }
                }
                Err(e) => {
                    self.next_look = Some(Instant::now() + CLEANUP_LOOK);
                    crate::ratelimit::warn_limited(
                        CLEANUP,
                        &format!("cannot look for shadow tables left behind: {e}"),
                    );
                }
            }
            return;
        };
        let outcome = cx.bounds().run(conn, &mut self.sizer, |tx, size| {
            let gone = tx.execute(
                &format!(
                    "DELETE FROM \"{table}\" WHERE id IN
                     (SELECT id FROM \"{table}\" ORDER BY id LIMIT ?1)"
                ),
                [size],
            )? as i64;
            if gone < size {
                tx.execute_batch(&format!("DROP TABLE \"{table}\""))?;
            }
            Ok(((gone < size, gone), gone.max(1)))
        });
        match outcome {
            Outcome::Committed {
                value: (dropped, gone),
                took,
            } => {
                self.rec.rows_processed += gone;
                cx.live.set(&self.rec);
                if let Some(r) = rest(took, cx.cfg.duty) {
                    *cx.not_before = Some(Instant::now() + r);
                }
                if dropped {
                    tracing::info!(table = %table, "shadow table dropped");
                    self.doing = None;
                    self.next_look = Some(Instant::now());
                }
            }
            Outcome::Stopped { .. } => {}
            Outcome::Transient(reason) => {
                crate::ratelimit::warn_limited(
                    CLEANUP,
                    &format!("shadow clean-up waits: {reason}"),
                );
                *cx.not_before = Some(Instant::now() + CLEANUP_LOOK);
            }
            Outcome::Failed(msg) => {
                crate::ratelimit::warn_limited(
                    CLEANUP,
                    &format!("cannot clean up {table}: {msg}; trying again later"),
                );
                self.doing = None;
                self.next_look = Some(Instant::now() + CLEANUP_LOOK * 30);
            }
        }
    }

    fn control(
        &mut self,
        _conn: &Connection,
        op: Control,
        _cx: &mut Cx<'_>,
    ) -> Result<MigrationInfo, ControlError> {
        Err(ControlError::Conflict {
            action: op.action(),
            name: CLEANUP.to_string(),
            status: "run by meshscope itself",
        })
    }

    fn fail(&mut self, _conn: &Connection, msg: &str, _cx: &mut Cx<'_>) {
        crate::ratelimit::warn_limited(CLEANUP, &format!("shadow clean-up failed: {msg}"));
        self.doing = None;
        self.next_look = Some(Instant::now() + CLEANUP_LOOK * 30);
    }

    fn announce(&self, cx: &Cx<'_>) {
        let _ = cx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shadow_name_belongs_to_exactly_one_index() {
        let t = "_meshscope_ix_idx_observations_observer_idx_timestamp_17650000000001_ins";
        assert_eq!(
            shadow_index(t),
            Some("idx_observations_observer_idx_timestamp")
        );
        assert_eq!(
            shadow_index("_meshscope_ix_idx_observations_observer_idx_17650000000001"),
            Some("idx_observations_observer_idx")
        );
        assert_eq!(shadow_index("_meshscope_ix_idx_x_upd"), None);
        assert_eq!(shadow_index("idx_observations_observer_idx_1_ins"), None);
    }
}
