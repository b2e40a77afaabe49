//! Online-migration status: the stored status vocabulary, its mapping to what
//! the API shows, and the progress / rate / ETA arithmetic.
//!
//! All of it is pure and takes `now_ms` as an argument, so the server, the
//! CLI and the dashboard show the same numbers for the same row.

use serde::{Deserialize, Serialize};

use crate::timefmt::parse_time_ms;

/// Status values as stored in `_async_migrations.status`.
pub mod stored {
    pub const PENDING: &str = "pending_async";
    pub const RUNNING: &str = "running";
    pub const PAUSED: &str = "paused";
    pub const DONE: &str = "done";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
}

/// Status as shown to operators. `Unknown` is what an unrecognised stored
/// value becomes: it is never mistaken for `Done`. `Throttled` is a running
/// migration holding back because the database is under strain (its row
/// says `running`, with a `throttle_reason`): it counts as running and
/// resumes by itself. `Unowned` is a row in
/// progress that no migration of this build owns (another program, such as
/// CoreScope, registered it): meshscope never runs it, so it is not work in
/// progress here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MigrationStatus {
    Pending,
    Running,
    Throttled,
    Paused,
    Done,
    Failed,
    Cancelled,
    Unowned,
    #[serde(other)]
    Unknown,
}

impl MigrationStatus {
    /// Every status, in lifecycle order (for exhaustive reporting, e.g. metrics).
    pub const ALL: [MigrationStatus; 9] = [
        MigrationStatus::Pending,
        MigrationStatus::Running,
        MigrationStatus::Throttled,
        MigrationStatus::Paused,
        MigrationStatus::Done,
        MigrationStatus::Failed,
        MigrationStatus::Cancelled,
        MigrationStatus::Unowned,
        MigrationStatus::Unknown,
    ];

    /// Maps a stored status string; anything unrecognised is `Unknown`.
    pub fn from_stored(s: &str) -> MigrationStatus {
        match s {
            stored::PENDING => MigrationStatus::Pending,
            stored::RUNNING => MigrationStatus::Running,
            stored::PAUSED => MigrationStatus::Paused,
            stored::DONE => MigrationStatus::Done,
            stored::FAILED => MigrationStatus::Failed,
            stored::CANCELLED => MigrationStatus::Cancelled,
            _ => MigrationStatus::Unknown,
        }
    }

    /// The value written to the table for this status (`Unowned` and
    /// `Unknown` are views of rows, never written; `Throttled` is stored as
    /// `running` with its reason beside it, so another program reading the
    /// table sees CoreScope's vocabulary).
    pub fn to_stored(self) -> Option<&'static str> {
        Some(match self {
            MigrationStatus::Pending => stored::PENDING,
            MigrationStatus::Running | MigrationStatus::Throttled => stored::RUNNING,
            MigrationStatus::Paused => stored::PAUSED,
            MigrationStatus::Done => stored::DONE,
            MigrationStatus::Failed => stored::FAILED,
            MigrationStatus::Cancelled => stored::CANCELLED,
            MigrationStatus::Unowned | MigrationStatus::Unknown => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::Pending => "pending",
            MigrationStatus::Running => "running",
            MigrationStatus::Throttled => "throttled",
            MigrationStatus::Paused => "paused",
            MigrationStatus::Done => "done",
            MigrationStatus::Failed => "failed",
            MigrationStatus::Cancelled => "cancelled",
            MigrationStatus::Unowned => "unowned",
            MigrationStatus::Unknown => "unknown",
        }
    }

    /// Warm-up is not over while a migration is in one of these states.
    pub fn is_in_progress(self) -> bool {
        matches!(
            self,
            MigrationStatus::Pending
                | MigrationStatus::Running
                | MigrationStatus::Throttled
                | MigrationStatus::Paused
        )
    }

    /// Running, held back by the health throttle or not.
    pub fn is_running(self) -> bool {
        matches!(self, MigrationStatus::Running | MigrationStatus::Throttled)
    }
}

/// An operator control (`POST /api/migrations/{name}/{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
    Retry,
}

impl Control {
    pub const ALL: [Control; 4] = [
        Control::Pause,
        Control::Resume,
        Control::Cancel,
        Control::Retry,
    ];

    /// The `{action}` path segment.
    pub fn action(self) -> &'static str {
        match self {
            Control::Pause => "pause",
            Control::Resume => "resume",
            Control::Cancel => "cancel",
            Control::Retry => "retry",
        }
    }

    /// Whether the server accepts this control for a migration in `status`
    /// (otherwise it answers 409), so the dashboard can disable the button.
    /// The server's engine applies exactly this rule.
    pub fn applies_to(self, status: MigrationStatus) -> bool {
        use MigrationStatus as S;
        match self {
            Control::Pause => matches!(status, S::Pending | S::Running | S::Throttled),
            Control::Resume => status == S::Paused,
            Control::Cancel => status.is_in_progress(),
            Control::Retry => matches!(status, S::Failed | S::Cancelled),
        }
    }
}

/// An `{action}` that is not one of the controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownControl(pub String);

impl std::fmt::Display for UnknownControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown action {:?}; use pause, resume, cancel or retry",
            self.0
        )
    }
}

impl std::str::FromStr for Control {
    type Err = UnknownControl;

    fn from_str(s: &str) -> Result<Control, UnknownControl> {
        Control::ALL
            .into_iter()
            .find(|c| c.action() == s)
            .ok_or_else(|| UnknownControl(s.to_string()))
    }
}

/// One `_async_migrations` row, its status parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRecord {
    pub name: String,
    pub status: MigrationStatus,
    /// The stored text when it is none meshscope knows (`status` is then `Unknown`).
    pub unrecognised_status: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub last_update_at: Option<String>,
    pub error: Option<String>,
    pub rows_processed: i64,
    pub rows_total: i64,
    pub attempts: i64,
    /// Why a running migration is holding back (the health throttle), in
    /// words for the operator; `None` when it is not.
    pub throttle_reason: Option<String>,
    /// When the throttle is next looked at (stored time text).
    pub throttled_until: Option<String>,
    /// The pre-flight estimate of the whole run, in milliseconds, from a
    /// timed sample before the first chunk.
    pub estimated_ms: Option<i64>,
}

impl MigrationRecord {
    /// A fresh record of `name` in `status`.
    pub fn new(name: &str, status: MigrationStatus) -> MigrationRecord {
        MigrationRecord {
            name: name.to_string(),
            status,
            unrecognised_status: None,
            started_at: None,
            ended_at: None,
            last_update_at: None,
            error: None,
            rows_processed: 0,
            rows_total: 0,
            attempts: 0,
            throttle_reason: None,
            throttled_until: None,
            estimated_ms: None,
        }
    }

    /// Parses a stored status text into the record's status fields.
    pub fn set_stored_status(&mut self, stored: &str) {
        self.status = MigrationStatus::from_stored(stored);
        self.unrecognised_status =
            (self.status == MigrationStatus::Unknown).then(|| stored.to_string());
    }

    /// Stored times no reader can parse, as (API field name, stored text).
    pub fn unreadable_times(&self) -> Vec<(&'static str, &str)> {
        [
            ("startedAt", &self.started_at),
            ("endedAt", &self.ended_at),
            ("lastUpdateAt", &self.last_update_at),
        ]
        .into_iter()
        .filter_map(|(field, v)| {
            v.as_deref()
                .filter(|s| parse_time_ms(s).is_none())
                .map(|s| (field, s))
        })
        .collect()
    }

    /// The status shown: a running row with a throttle reason is `Throttled`.
    pub fn shown_status(&self) -> MigrationStatus {
        match self.status {
            MigrationStatus::Running
                if self
                    .throttle_reason
                    .as_deref()
                    .is_some_and(|r| !r.is_empty()) =>
            {
                MigrationStatus::Throttled
            }
            st => st,
        }
    }

    /// The text stored for this record's status.
    pub fn stored_status(&self) -> &str {
        match self.status.to_stored() {
            Some(s) => s,
            None => self.unrecognised_status.as_deref().unwrap_or(""),
        }
    }
}

/// Who runs the migration a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A migration of this build's registry.
    Meshscope,
    /// A name no registered migration owns (another program's bookkeeping).
    Other,
}

/// What the API, the CLI and the banner show of one migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MigrationInfo {
    pub name: String,
    pub status: MigrationStatus,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub last_update_at: Option<String>,
    pub rows_processed: i64,
    pub rows_total: i64,
    pub attempts: i64,
    pub elapsed_sec: f64,
    pub rate_per_sec: f64,
    pub eta_sec: Option<f64>,
    pub percent: f64,
    pub error: Option<String>,
    /// Why a `throttled` migration is holding back, in words for the operator.
    #[serde(default)]
    pub throttle_reason: Option<String>,
    /// When a `throttled` migration next looks at the signal that holds it.
    #[serde(default)]
    pub throttled_until: Option<String>,
    /// The pre-flight estimate of the whole run in seconds (a timed sample
    /// of chunks before the first one), shown before a rate exists.
    #[serde(default)]
    pub estimated_sec: Option<f64>,
}

/// Percent done, clamped to 0-100; 0 when the total is unknown (0), never NaN.
pub fn percent(processed: i64, total: i64) -> f64 {
    if total <= 0 || processed <= 0 {
        return 0.0;
    }
    let p = processed as f64 * 100.0 / total as f64;
    p.clamp(0.0, 100.0)
}

/// The whole percent every view shows (text and bars alike): floored, so a
/// migration never reads 100 before it is done.
pub fn whole_percent(processed: i64, total: i64) -> i64 {
    percent(processed, total).floor() as i64
}

/// Rows per second over `elapsed_sec`; 0 when nothing is known yet.
pub fn rate_per_sec(processed: i64, elapsed_sec: f64) -> f64 {
    if processed <= 0 || !elapsed_sec.is_finite() || elapsed_sec <= 0.0 {
        return 0.0;
    }
    processed as f64 / elapsed_sec
}

/// Seconds left at `rate`; `None` when the rate is 0 or the total unknown.
pub fn eta_sec(processed: i64, total: i64, rate: f64) -> Option<f64> {
    if total <= 0 || !rate.is_finite() || rate <= 0.0 {
        return None;
    }
    let left = (total - processed).max(0) as f64;
    Some(left / rate)
}

/// The explanation shown with an [`MigrationStatus::Unowned`] row.
pub fn unowned_message(stored: &str) -> String {
    format!(
        "meshscope does not run this migration: another program (such as CoreScope) \
         registered it, and its row says {stored:?}. It does not hold up warm-up here; \
         that program finishes it when it runs on this file."
    )
}

impl MigrationInfo {
    /// Builds the operator view of a stored row at `now_ms`.
    ///
    /// Stored times are read in every shape [`parse_time_ms`] takes. One that
    /// still does not parse is not read as zero: `error` names the field, and
    /// the elapsed time / rate are reported as 0. A row in progress that
    /// meshscope does not own reads [`MigrationStatus::Unowned`].
    pub fn from_record(rec: &MigrationRecord, now_ms: i64, owner: Owner) -> MigrationInfo {
        let mut status = rec.shown_status();
        let problems: Vec<String> = rec
            .unreadable_times()
            .into_iter()
            .map(|(field, s)| format!("{field} could not be parsed: {s:?}"))
            .collect();
        let parse = |v: &Option<String>| v.as_deref().and_then(parse_time_ms);
        let (started, ended, last_update) = (
            parse(&rec.started_at),
            parse(&rec.ended_at),
            parse(&rec.last_update_at),
        );
        let ts_broken = !problems.is_empty();

        // An error left in a row that is no longer failing (another writer,
        // a hand edit, a run that finished after a retry) is not shown: only
        // a failure has an error, and a pause its reason.
        let mut error = rec.error.clone().filter(|e| !e.is_empty()).filter(|_| {
            matches!(
                status,
                MigrationStatus::Failed | MigrationStatus::Paused | MigrationStatus::Unknown
            )
        });
        let throttle_reason = rec
            .throttle_reason
            .clone()
            .filter(|_| status == MigrationStatus::Throttled);
        if owner == Owner::Other && status.is_in_progress() {
            status = MigrationStatus::Unowned;
            error = Some(unowned_message(rec.stored_status()));
        }
        // A running migration's clock runs to now; a stopped one's to when it
        // stopped (its end, else its last progress write). A pending one has
        // not started, whatever `started_at` holds (CoreScope stamps it when
        // the row is registered).
        let elapsed_sec = match status {
            _ if !has_started(status) => 0.0,
            _ if ts_broken => 0.0,
            _ => {
                let until = match status {
                    MigrationStatus::Running | MigrationStatus::Throttled => now_ms,
                    _ => ended.or(last_update).unwrap_or(now_ms),
                };
                started.map_or(0.0, |s| ((until - s).max(0)) as f64 / 1000.0)
            }
        };
        let rate = rate_per_sec(rec.rows_processed, elapsed_sec);
        let estimated = rec.estimated_ms.map(|e| e as f64 / 1000.0);
        let eta = match status {
            // Before the first chunk there is no rate: the pre-flight
            // estimate stands in.
            MigrationStatus::Running | MigrationStatus::Throttled => {
                eta_sec(rec.rows_processed, rec.rows_total, rate).or(estimated)
            }
            _ => None,
        };
        if ts_broken {
            let msg = problems.join("; ");
            error = Some(match error {
                Some(e) => format!("{e}; {msg}"),
                None => msg,
            });
        }
        if status == MigrationStatus::Unknown && error.is_none() {
            error = Some(format!(
                "unrecognised stored status {:?}",
                rec.unrecognised_status.as_deref().unwrap_or("")
            ));
        }
        MigrationInfo {
            name: rec.name.clone(),
            status,
            started_at: rec.started_at.clone(),
            ended_at: rec.ended_at.clone(),
            last_update_at: rec.last_update_at.clone(),
            rows_processed: rec.rows_processed,
            rows_total: rec.rows_total,
            attempts: rec.attempts,
            elapsed_sec,
            rate_per_sec: rate,
            eta_sec: eta,
            // Done is all of it, whatever the counts (a run with nothing to
            // process is 0 of 0).
            percent: if status == MigrationStatus::Done {
                100.0
            } else {
                percent(rec.rows_processed, rec.rows_total)
            },
            error,
            throttled_until: throttle_reason.as_ref().and(rec.throttled_until.clone()),
            throttle_reason,
            estimated_sec: match status {
                MigrationStatus::Pending
                | MigrationStatus::Running
                | MigrationStatus::Throttled
                | MigrationStatus::Paused => estimated,
                _ => None,
            },
        }
    }

    /// When the run started, as the operator is told: `None` ("not
    /// started") for a pending or unowned row, whatever its `started_at`
    /// holds (CoreScope stamps it when the row is registered).
    pub fn started(&self) -> Option<&str> {
        self.started_at
            .as_deref()
            .filter(|_| has_started(self.status))
    }

    /// The time left as every view says it: "about 2 min left" ("under
    /// 1 s left") from the rate while it runs, "about 2 min (estimated)"
    /// from the pre-flight estimate before there is a rate; `None` when
    /// neither is known.
    pub fn eta_text(&self) -> Option<String> {
        use crate::fmt::duration_approx;
        match (self.eta_sec.filter(|e| e.is_finite()), self.estimated_sec) {
            (Some(eta), _) if eta < 1.0 => Some(format!("{} left", duration_approx(eta))),
            (Some(eta), _) => Some(format!("about {} left", duration_approx(eta))),
            (None, Some(est)) if est.is_finite() && est >= 0.0 => Some(format!(
                "about {} (estimated)",
                duration_approx(est.max(1.0))
            )),
            _ => None,
        }
    }

    /// The percent done as every view shows it, whole and floored (a
    /// migration reads 100 only once done, and always once done).
    pub fn whole_percent(&self) -> i64 {
        match self.status {
            MigrationStatus::Done => 100,
            _ => whole_percent(self.rows_processed, self.rows_total),
        }
    }

    /// [`MigrationInfo::whole_percent`] with its sign: "42%".
    pub fn percent_text(&self) -> String {
        format!("{}%", self.whole_percent())
    }

    /// When this row last changed state, for auto-dismissing its banner
    /// line: its end, else its last progress write, else its start.
    pub fn settled_at(&self) -> Option<&str> {
        self.ended_at
            .as_deref()
            .or(self.last_update_at.as_deref())
            .or(self.started_at.as_deref())
    }
}

/// What a page built from `job`'s work (the Nodes and Map pages from
/// `nodes_backfill_v1`) says while that job has not finished: how far it
/// is, so an empty or short list reads "still being built", never "none".
/// `None` once it is done, or when it is not listed.
pub fn building_note(infos: &[MigrationInfo], job: &str, what: &str) -> Option<String> {
    let m = infos.iter().find(|m| m.name == job)?;
    if m.status == MigrationStatus::Done {
        return None;
    }
    let state = match m.status {
        MigrationStatus::Failed => "stopped by a failure (see Migrations)".to_string(),
        MigrationStatus::Cancelled => "cancelled (see Migrations)".to_string(),
        MigrationStatus::Paused => format!("paused at {}", m.percent_text()),
        _ => match m.eta_text() {
            Some(eta) => format!("{} done, {eta}", m.percent_text()),
            None => format!("{} done", m.percent_text()),
        },
    };
    Some(format!(
        "{what} is still being built from the adverts in this file ({job}: {state}); \
         it shows what is known so far."
    ))
}

/// True while any migration keeps warm-up from being over.
pub fn any_in_progress(infos: &[MigrationInfo]) -> bool {
    infos.iter().any(|m| m.status.is_in_progress())
}

/// Whether a migration in `status` has started a run (pending and unowned
/// ones have not, whatever their stored `started_at`).
fn has_started(status: MigrationStatus) -> bool {
    !matches!(status, MigrationStatus::Pending | MigrationStatus::Unowned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_says_its_list_is_being_built_until_the_job_is_done() {
        let mut r = MigrationRecord::new("nodes_backfill_v1", MigrationStatus::Running);
        r.rows_processed = 450;
        r.rows_total = 1000;
        let info = |r: &MigrationRecord| MigrationInfo::from_record(r, 0, Owner::Meshscope);
        let note = building_note(&[info(&r)], "nodes_backfill_v1", "The node list").unwrap();
        assert!(
            note.starts_with("The node list is still being built"),
            "{note}"
        );
        assert!(note.contains("45% done"), "{note}");
        r.status = MigrationStatus::Failed;
        let note = building_note(&[info(&r)], "nodes_backfill_v1", "The map").unwrap();
        assert!(note.contains("stopped by a failure"), "{note}");
        r.status = MigrationStatus::Done;
        assert_eq!(building_note(&[info(&r)], "nodes_backfill_v1", "x"), None);
        assert_eq!(building_note(&[], "nodes_backfill_v1", "x"), None);
    }

    #[test]
    fn status_mapping_table() {
        let table = [
            ("pending_async", MigrationStatus::Pending),
            ("running", MigrationStatus::Running),
            ("paused", MigrationStatus::Paused),
            ("done", MigrationStatus::Done),
            ("failed", MigrationStatus::Failed),
            ("cancelled", MigrationStatus::Cancelled),
            ("pending", MigrationStatus::Unknown),
            ("DONE", MigrationStatus::Unknown),
            ("", MigrationStatus::Unknown),
            ("complete", MigrationStatus::Unknown),
            ("unowned", MigrationStatus::Unknown),
            ("throttled", MigrationStatus::Unknown),
        ];
        for (s, want) in table {
            assert_eq!(MigrationStatus::from_stored(s), want, "stored {s:?}");
        }
        for st in MigrationStatus::ALL {
            match st.to_stored() {
                // Throttled is a running row with a reason beside it.
                Some(s) if st == MigrationStatus::Throttled => {
                    assert_eq!(MigrationStatus::from_stored(s), MigrationStatus::Running);
                }
                Some(s) => assert_eq!(MigrationStatus::from_stored(s), st),
                None => assert!(matches!(
                    st,
                    MigrationStatus::Unknown | MigrationStatus::Unowned
                )),
            }
        }
        let mut r = MigrationRecord::new("m", MigrationStatus::Pending);
        r.set_stored_status("exploded");
        assert_eq!(r.status, MigrationStatus::Unknown);
        assert_eq!(r.stored_status(), "exploded");
        r.set_stored_status("running");
        assert_eq!(
            (r.status, r.stored_status()),
            (MigrationStatus::Running, "running")
        );
        assert_eq!(r.unrecognised_status, None);
    }

    #[test]
    fn controls_apply_to_the_statuses_the_engine_accepts() {
        use MigrationStatus as S;
        let allowed = |c: Control| -> Vec<S> {
            S::ALL
                .iter()
                .copied()
                .filter(|s| c.applies_to(*s))
                .collect()
        };
        assert_eq!(
            allowed(Control::Pause),
            [S::Pending, S::Running, S::Throttled]
        );
        assert_eq!(allowed(Control::Resume), [S::Paused]);
        assert_eq!(
            allowed(Control::Cancel),
            [S::Pending, S::Running, S::Throttled, S::Paused]
        );
        assert_eq!(allowed(Control::Retry), [S::Failed, S::Cancelled]);
        for c in Control::ALL {
            assert_eq!(c.action().parse::<Control>(), Ok(c));
            assert!(
                !c.applies_to(S::Unowned),
                "{c:?} on a row meshscope does not run"
            );
        }
        let err = "explode".parse::<Control>().unwrap_err().to_string();
        assert!(err.contains("explode") && err.contains("retry"), "{err}");
    }

    #[test]
    fn status_json_is_lowercase_and_unknown_tolerant() {
        assert_eq!(
            serde_json::to_string(&MigrationStatus::Pending).unwrap(),
            "\"pending\""
        );
        assert_eq!(
            serde_json::to_string(&MigrationStatus::Unowned).unwrap(),
            "\"unowned\""
        );
        let s: MigrationStatus = serde_json::from_str("\"exploded\"").unwrap();
        assert_eq!(s, MigrationStatus::Unknown);
    }

    #[test]
    fn percent_clamps_and_never_nan() {
        assert_eq!(percent(0, 0), 0.0);
        assert_eq!(percent(5, 0), 0.0);
        assert_eq!(percent(50, 100), 50.0);
        assert_eq!(percent(150, 100), 100.0);
        assert_eq!(percent(-3, 100), 0.0);
        assert!(!percent(1, 3).is_nan());
        assert_eq!(whole_percent(999, 1000), 99, "never 100 before the end");
        assert_eq!(whole_percent(1000, 1000), 100);
    }

    #[test]
    fn eta_null_cases() {
        assert_eq!(eta_sec(10, 0, 5.0), None, "unknown total");
        assert_eq!(eta_sec(10, 100, 0.0), None, "zero rate");
        assert_eq!(eta_sec(10, 100, f64::NAN), None, "NaN rate");
        assert_eq!(eta_sec(10, 100, 9.0), Some(10.0));
        assert_eq!(eta_sec(120, 100, 9.0), Some(0.0), "never negative");
        assert_eq!(rate_per_sec(10, 0.0), 0.0);
    }

    fn rec(status: &str) -> MigrationRecord {
        let mut r = MigrationRecord::new("m", MigrationStatus::Pending);
        r.set_stored_status(status);
        r.started_at = Some("2026-01-01T00:00:00.000Z".into());
        r.rows_processed = 500;
        r.rows_total = 1000;
        r.attempts = 1;
        r
    }

    const MS: Owner = Owner::Meshscope;

    #[test]
    fn running_info_computes_rate_and_eta_from_now() {
        let start = parse_time_ms("2026-01-01T00:00:00.000Z").unwrap();
        let info = MigrationInfo::from_record(&rec("running"), start + 10_000, MS);
        assert_eq!(info.status, MigrationStatus::Running);
        assert_eq!(info.elapsed_sec, 10.0);
        assert_eq!(info.rate_per_sec, 50.0);
        assert_eq!(info.eta_sec, Some(10.0));
        assert_eq!(info.percent, 50.0);
        assert_eq!(info.error, None);
    }

    #[test]
    fn a_running_row_with_a_throttle_reason_is_throttled_and_counts_as_running() {
        let mut r = rec("running");
        r.throttle_reason = Some("WAL is 300 MB".into());
        r.throttled_until = Some("2026-01-01T00:00:05Z".into());
        let m = MigrationInfo::from_record(&r, 1_767_225_610_000, Owner::Meshscope);
        assert_eq!(m.status, MigrationStatus::Throttled);
        assert!(m.status.is_in_progress() && m.status.is_running());
        assert_eq!(m.throttle_reason.as_deref(), Some("WAL is 300 MB"));
        assert_eq!(m.throttled_until.as_deref(), Some("2026-01-01T00:00:05Z"));
        assert!(m.eta_sec.is_some(), "a throttled run keeps its ETA");
        // A reason left on a row that is no longer running means nothing.
        let mut done = r.clone();
        done.set_stored_status("done");
        let m = MigrationInfo::from_record(&done, 1_767_225_610_000, Owner::Meshscope);
        assert_eq!(m.status, MigrationStatus::Done);
        assert_eq!((m.throttle_reason, m.throttled_until), (None, None));
        assert!(Control::Pause.applies_to(MigrationStatus::Throttled));
        assert!(Control::Cancel.applies_to(MigrationStatus::Throttled));
        assert!(!Control::Resume.applies_to(MigrationStatus::Throttled));
    }

    #[test]
    fn the_preflight_estimate_shows_before_a_rate_exists() {
        let mut r = rec("pending_async");
        r.rows_processed = 0;
        r.estimated_ms = Some(420_000);
        let m = MigrationInfo::from_record(&r, 1_767_225_610_000, Owner::Meshscope);
        assert_eq!((m.estimated_sec, m.eta_sec), (Some(420.0), None));
        let mut started = r.clone();
        started.set_stored_status("running");
        let m = MigrationInfo::from_record(&started, 1_767_225_610_000, Owner::Meshscope);
        assert_eq!(
            m.eta_sec,
            Some(420.0),
            "no rate yet: the estimate stands in"
        );
        let mut done = r;
        done.set_stored_status("done");
        let m = MigrationInfo::from_record(&done, 1_767_225_610_000, Owner::Meshscope);
        assert_eq!(m.estimated_sec, None);
    }

    #[test]
    fn stopped_info_uses_end_time_and_has_no_eta() {
        let mut r = rec("done");
        r.ended_at = Some("2026-01-01T00:00:04.000Z".into());
        let start = parse_time_ms("2026-01-01T00:00:00.000Z").unwrap();
        let info = MigrationInfo::from_record(&r, start + 3_600_000, MS);
        assert_eq!(info.elapsed_sec, 4.0);
        assert_eq!(info.rate_per_sec, 125.0);
        assert_eq!(info.eta_sec, None);
    }

    #[test]
    fn corescope_datetime_now_timestamps_are_read_not_reported() {
        // A CoreScope `done` row: both times from SQLite's datetime('now').
        let mut r = rec("done");
        r.started_at = Some("2026-11-27 07:33:12".into());
        r.ended_at = Some("2026-11-27 07:33:20".into());
        r.last_update_at = Some("2026-11-27T07:33:20Z".into());
        let info = MigrationInfo::from_record(&r, 1_795_800_000_000, MS);
        assert_eq!(info.error, None, "{:?}", info.error);
        assert_eq!(info.elapsed_sec, 8.0);
        assert_eq!(info.status, MigrationStatus::Done);
    }

    #[test]
    fn pending_has_no_elapsed_time_whatever_started_at_holds() {
        let mut r = rec("pending_async");
        r.rows_processed = 0;
        r.started_at = Some("2026-11-27 07:33:12".into());
        let info = MigrationInfo::from_record(&r, 1_795_800_000_000, MS);
        assert_eq!(
            (info.elapsed_sec, info.rate_per_sec, info.eta_sec),
            (0.0, 0.0, None)
        );
        assert_eq!(info.started(), None, "shown as not started");
        let running = MigrationInfo::from_record(&rec("running"), 1_795_800_000_000, MS);
        assert!(running.started().is_some());
        let other = MigrationInfo::from_record(&rec("running"), 0, Owner::Other);
        assert_eq!(other.started(), None, "unowned: not started here");
    }

    #[test]
    fn a_row_in_progress_that_meshscope_does_not_own_is_unowned_not_running() {
        for stored in ["pending_async", "running", "paused"] {
            let info = MigrationInfo::from_record(&rec(stored), 0, Owner::Other);
            assert_eq!(info.status, MigrationStatus::Unowned, "{stored}");
            assert!(!info.status.is_in_progress());
            assert!(!any_in_progress(std::slice::from_ref(&info)));
            let err = info.error.unwrap();
            assert!(
                err.contains("does not run") && err.contains(stored),
                "{err}"
            );
        }
        // Finished rows of other programs keep their status.
        for stored in ["done", "failed", "cancelled"] {
            let info = MigrationInfo::from_record(&rec(stored), 0, Owner::Other);
            assert_eq!(info.status, MigrationStatus::from_stored(stored));
        }
    }

    #[test]
    fn unparseable_timestamp_is_reported_not_zeroed() {
        let mut r = rec("running");
        r.started_at = Some("yesterday-ish".into());
        let info = MigrationInfo::from_record(&r, 1_000_000, MS);
        let err = info.error.expect("a broken timestamp must be reported");
        assert!(err.contains("startedAt"), "{err}");
        assert!(err.contains("yesterday-ish"), "{err}");
        assert_eq!(info.rate_per_sec, 0.0);
        assert_eq!(info.eta_sec, None);

        let mut r = rec("failed");
        r.error = Some("disk I/O error".into());
        r.ended_at = Some("not a time".into());
        let info = MigrationInfo::from_record(&r, 1_000_000, MS);
        let err = info.error.unwrap();
        assert!(
            err.contains("disk I/O error") && err.contains("endedAt"),
            "{err}"
        );
    }

    #[test]
    fn a_leftover_error_shows_only_on_a_failure_or_a_pause() {
        for (stored, shown) in [
            ("done", false),
            ("pending_async", false),
            ("running", false),
            ("cancelled", false),
            ("failed", true),
            ("paused", true),
        ] {
            let mut r = rec(stored);
            r.error = Some("stale".into());
            let info = MigrationInfo::from_record(&r, 0, MS);
            assert_eq!(
                info.error.as_deref() == Some("stale"),
                shown,
                "{stored}: {:?}",
                info.error
            );
        }
    }

    #[test]
    fn unknown_status_carries_an_explanation() {
        let info = MigrationInfo::from_record(&rec("complete"), 0, MS);
        assert_eq!(info.status, MigrationStatus::Unknown);
        assert!(info.error.unwrap().contains("complete"));
        assert!(!MigrationStatus::Unknown.is_in_progress());
    }

    #[test]
    fn info_json_is_camel_case() {
        let info = MigrationInfo::from_record(&rec("pending_async"), 0, MS);
        let v = serde_json::to_value(&info).unwrap();
        for key in [
            "name",
            "status",
            "startedAt",
            "endedAt",
            "lastUpdateAt",
            "rowsProcessed",
            "rowsTotal",
            "attempts",
            "elapsedSec",
            "ratePerSec",
            "etaSec",
            "percent",
            "error",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["status"], "pending");
    }
}
