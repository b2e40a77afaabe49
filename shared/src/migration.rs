//! Online-migration status: the stored status vocabulary, its mapping to what
//! the API shows, and the progress / rate / ETA arithmetic.
//!
//! All of it is pure and takes `now_ms` as an argument, so the server, the
//! CLI and the dashboard show the same numbers for the same row.

use serde::{Deserialize, Serialize};

use crate::timefmt::parse_rfc3339_ms;

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
/// value becomes: it is never mistaken for `Done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MigrationStatus {
    Pending,
    Running,
    Paused,
    Done,
    Failed,
    Cancelled,
    #[serde(other)]
    Unknown,
}

impl MigrationStatus {
    /// Every status, in lifecycle order (for exhaustive reporting, e.g. metrics).
    pub const ALL: [MigrationStatus; 7] = [
        MigrationStatus::Pending,
        MigrationStatus::Running,
        MigrationStatus::Paused,
        MigrationStatus::Done,
        MigrationStatus::Failed,
        MigrationStatus::Cancelled,
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

    /// The value written to the table for this status (`Unknown` is never written).
    pub fn to_stored(self) -> Option<&'static str> {
        Some(match self {
            MigrationStatus::Pending => stored::PENDING,
            MigrationStatus::Running => stored::RUNNING,
            MigrationStatus::Paused => stored::PAUSED,
            MigrationStatus::Done => stored::DONE,
            MigrationStatus::Failed => stored::FAILED,
            MigrationStatus::Cancelled => stored::CANCELLED,
            MigrationStatus::Unknown => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::Pending => "pending",
            MigrationStatus::Running => "running",
            MigrationStatus::Paused => "paused",
            MigrationStatus::Done => "done",
            MigrationStatus::Failed => "failed",
            MigrationStatus::Cancelled => "cancelled",
            MigrationStatus::Unknown => "unknown",
        }
    }

    /// Warm-up is not over while a migration is in one of these states.
    pub fn is_in_progress(self) -> bool {
        matches!(
            self,
            MigrationStatus::Pending | MigrationStatus::Running | MigrationStatus::Paused
        )
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
    pub fn applies_to(self, status: MigrationStatus) -> bool {
        use MigrationStatus as S;
        match self {
            Control::Pause => matches!(status, S::Pending | S::Running),
            Control::Resume => status == S::Paused,
            Control::Cancel => status.is_in_progress(),
            Control::Retry => matches!(status, S::Failed | S::Cancelled),
        }
    }
}

/// One `_async_migrations` row as read from the database, unparsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationRecord {
    pub name: String,
    pub status: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub last_update_at: Option<String>,
    pub error: Option<String>,
    pub rows_processed: i64,
    pub rows_total: i64,
    pub attempts: i64,
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
}

/// Percent done, clamped to 0-100; 0 when the total is unknown (0), never NaN.
pub fn percent(processed: i64, total: i64) -> f64 {
    if total <= 0 || processed <= 0 {
        return 0.0;
    }
    let p = processed as f64 * 100.0 / total as f64;
    p.clamp(0.0, 100.0)
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

impl MigrationInfo {
    /// Builds the operator view of a stored row at `now_ms`.
    ///
    /// A stored timestamp that does not parse is not read as zero: `error`
    /// names the field, and the elapsed time / rate are reported as 0.
    pub fn from_record(rec: &MigrationRecord, now_ms: i64) -> MigrationInfo {
        let status = MigrationStatus::from_stored(&rec.status);
        let mut problems: Vec<String> = Vec::new();
        let mut parse = |field: &str, v: &Option<String>| -> Option<i64> {
            let s = v.as_deref()?;
            let parsed = parse_rfc3339_ms(s);
            if parsed.is_none() {
                problems.push(format!("{field} could not be parsed: {s:?}"));
            }
            parsed
        };
        let started = parse("startedAt", &rec.started_at);
        let ended = parse("endedAt", &rec.ended_at);
        let last_update = parse("lastUpdateAt", &rec.last_update_at);
        let ts_broken = !problems.is_empty();

        // A running migration's clock runs to now; a stopped one's to when it
        // stopped (its end, else its last progress write).
        let until = match status {
            MigrationStatus::Running | MigrationStatus::Pending => Some(now_ms),
            _ => ended.or(last_update).or(Some(now_ms)),
        };
        let elapsed_sec = match (started, until) {
            (Some(s), Some(u)) if !ts_broken => ((u - s).max(0)) as f64 / 1000.0,
            _ => 0.0,
        };
        let rate = rate_per_sec(rec.rows_processed, elapsed_sec);
        let eta = match status {
            MigrationStatus::Running | MigrationStatus::Pending => {
                eta_sec(rec.rows_processed, rec.rows_total, rate)
            }
            _ => None,
        };
        let mut error = rec.error.clone().filter(|e| !e.is_empty());
        if ts_broken {
            let msg = problems.join("; ");
            error = Some(match error {
                Some(e) => format!("{e}; {msg}"),
                None => msg,
            });
        }
        if status == MigrationStatus::Unknown && error.is_none() {
            error = Some(format!("unrecognised stored status {:?}", rec.status));
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
            percent: percent(rec.rows_processed, rec.rows_total),
            error,
        }
    }
}

/// True while any migration keeps warm-up from being over.
pub fn any_in_progress(infos: &[MigrationInfo]) -> bool {
    infos.iter().any(|m| m.status.is_in_progress())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ];
        for (s, want) in table {
            assert_eq!(MigrationStatus::from_stored(s), want, "stored {s:?}");
        }
        for st in [
            MigrationStatus::Pending,
            MigrationStatus::Running,
            MigrationStatus::Paused,
            MigrationStatus::Done,
            MigrationStatus::Failed,
            MigrationStatus::Cancelled,
        ] {
            let s = st.to_stored().expect("known statuses are storable");
            assert_eq!(MigrationStatus::from_stored(s), st);
        }
        assert_eq!(MigrationStatus::Unknown.to_stored(), None);
    }

    #[test]
    fn controls_apply_to_the_statuses_the_engine_accepts() {
        use MigrationStatus as S;
        let all = [
            S::Pending,
            S::Running,
            S::Paused,
            S::Done,
            S::Failed,
            S::Cancelled,
            S::Unknown,
        ];
        let allowed =
            |c: Control| -> Vec<S> { all.iter().copied().filter(|s| c.applies_to(*s)).collect() };
        assert_eq!(allowed(Control::Pause), [S::Pending, S::Running]);
        assert_eq!(allowed(Control::Resume), [S::Paused]);
        assert_eq!(
            allowed(Control::Cancel),
            [S::Pending, S::Running, S::Paused]
        );
        assert_eq!(allowed(Control::Retry), [S::Failed, S::Cancelled]);
        assert_eq!(Control::Retry.action(), "retry");
    }

    #[test]
    fn status_json_is_lowercase_and_unknown_tolerant() {
        assert_eq!(
            serde_json::to_string(&MigrationStatus::Pending).unwrap(),
            "\"pending\""
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
        MigrationRecord {
            name: "m".into(),
            status: status.into(),
            started_at: Some("2026-01-01T00:00:00.000Z".into()),
            rows_processed: 500,
            rows_total: 1000,
            attempts: 1,
            ..Default::default()
        }
    }

    #[test]
    fn running_info_computes_rate_and_eta_from_now() {
        let start = parse_rfc3339_ms("2026-01-01T00:00:00.000Z").unwrap();
        let info = MigrationInfo::from_record(&rec("running"), start + 10_000);
        assert_eq!(info.status, MigrationStatus::Running);
        assert_eq!(info.elapsed_sec, 10.0);
        assert_eq!(info.rate_per_sec, 50.0);
        assert_eq!(info.eta_sec, Some(10.0));
        assert_eq!(info.percent, 50.0);
        assert_eq!(info.error, None);
    }

    #[test]
    fn stopped_info_uses_end_time_and_has_no_eta() {
        let mut r = rec("done");
        r.ended_at = Some("2026-01-01T00:00:04.000Z".into());
        let start = parse_rfc3339_ms("2026-01-01T00:00:00.000Z").unwrap();
        let info = MigrationInfo::from_record(&r, start + 3_600_000);
        assert_eq!(info.elapsed_sec, 4.0);
        assert_eq!(info.rate_per_sec, 125.0);
        assert_eq!(info.eta_sec, None);
    }

    #[test]
    fn unparseable_timestamp_is_reported_not_zeroed() {
        let mut r = rec("running");
        r.started_at = Some("yesterday-ish".into());
        let info = MigrationInfo::from_record(&r, 1_000_000);
        let err = info.error.expect("a broken timestamp must be reported");
        assert!(err.contains("startedAt"), "{err}");
        assert!(err.contains("yesterday-ish"), "{err}");
        assert_eq!(info.rate_per_sec, 0.0);
        assert_eq!(info.eta_sec, None);

        let mut r = rec("failed");
        r.error = Some("disk I/O error".into());
        r.ended_at = Some("not a time".into());
        let info = MigrationInfo::from_record(&r, 1_000_000);
        let err = info.error.unwrap();
        assert!(
            err.contains("disk I/O error") && err.contains("endedAt"),
            "{err}"
        );
    }

    #[test]
    fn unknown_status_carries_an_explanation() {
        let info = MigrationInfo::from_record(&rec("complete"), 0);
        assert_eq!(info.status, MigrationStatus::Unknown);
        assert!(info.error.unwrap().contains("complete"));
        assert!(!MigrationStatus::Unknown.is_in_progress());
    }

    #[test]
    fn info_json_is_camel_case() {
        let info = MigrationInfo::from_record(&rec("pending_async"), 0);
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
