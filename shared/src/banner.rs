//! The warm-up banner's rules: which lines the dashboard shows above every
//! page, and whether it shows at all, as a pure function of the latest
//! healthz read (or the failure to get one), the time and the failures the
//! operator has dismissed. The app only renders what [`banner`] returns.
//!
//! The banner fails closed: anything that keeps us from proving warm-up is
//! over (no answer, a status read error, an unknown status, a failure the
//! operator has not acknowledged) keeps it up.

use std::collections::BTreeSet;

use crate::api::Healthz;
use crate::fmt::{rate, thousands};
use crate::migration::{percent, MigrationInfo, MigrationStatus};
use crate::timefmt::parse_time_ms;

/// A failed migration's line goes away by itself this long after its `endedAt`.
pub const AUTO_DISMISS_MS: i64 = 10 * 60 * 1000;

/// Polling interval for `/api/healthz` (when the event stream is unavailable)
/// while the banner is up.
pub const POLL_BUSY_MS: u32 = 2_000;
/// Polling interval once everything is steady.
pub const POLL_STEADY_MS: u32 = 30_000;

/// Text of the line shown when healthz cannot be fetched or is not JSON.
pub const UNREACHABLE: &str = "Can't reach the meshscope server — retrying…";

/// The latest healthz, or the failure to get one.
#[derive(Debug, Clone, Copy)]
pub enum HealthRead<'a> {
    Ok(&'a Healthz),
    /// The server did not answer, or its answer was not healthz JSON.
    Failed,
}

/// What a line is about; the app picks markup (a progress bar, a × button) by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum LineKind {
    /// The server could not be reached, or its answer was not healthz.
    Unreachable,
    /// The server answered but says it is not ready.
    NotReady,
    /// The server could not read migration status (`async_migrations_error`).
    StatusError,
    /// A pending or running migration; `percent` is 0-100, never NaN.
    Progress { percent: f64 },
    /// A running migration held back by the health throttle (it resumes by itself).
    Throttled { percent: f64 },
    /// A paused migration.
    Paused { percent: f64 },
    /// A failed migration the operator can dismiss with the × button.
    Failed { dismiss_key: String },
    /// A row another program owns, shown like a failure: the operator can
    /// dismiss it, and it goes away by itself like one.
    Unowned { dismiss_key: String },
    /// A migration whose status the server does not recognise.
    Unknown,
    /// A live-ingest source that is disconnected or silent (see [`crate::liveness`]).
    IngestSource,
}

/// One line of the banner.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub kind: LineKind,
    /// The migration the line is about, if any.
    pub name: Option<String>,
    /// Plain text: render it as text, never as markup.
    pub text: String,
}

/// The banner to show: its lines (none: hidden).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Banner {
    pub lines: Vec<Line>,
}

impl Banner {
    /// Whether there is anything to show.
    pub fn visible(&self) -> bool {
        !self.lines.is_empty()
    }

    /// Steady state: nothing to tell the operator.
    pub fn is_steady(&self) -> bool {
        !self.visible()
    }
}

/// The key under which dismissing a failure is remembered: one failure of one
/// migration (its name and `endedAt`), so a later failure shows again.
pub fn dismiss_key(name: &str, ended_at: Option<&str>) -> String {
    format!("{name}@{}", ended_at.unwrap_or(""))
}

/// The banner for `read` at `now_ms`, given the dismissed failure keys.
pub fn banner(read: HealthRead<'_>, now_ms: i64, dismissed: &BTreeSet<String>) -> Banner {
    let h = match read {
        HealthRead::Failed => {
            return Banner {
                lines: vec![Line {
                    kind: LineKind::Unreachable,
                    name: None,
                    text: UNREACHABLE.to_string(),
                }],
            }
        }
        HealthRead::Ok(h) => h,
    };
    let mut lines = Vec::new();
    if !h.ready {
        lines.push(Line {
            kind: LineKind::NotReady,
            name: None,
            text: "The meshscope server is starting up and not ready yet.".to_string(),
        });
    }
    if let Some(err) = &h.async_migrations_error {
        lines.push(Line {
            kind: LineKind::StatusError,
            name: None,
            text: format!("Migration status unavailable: {err}"),
        });
    }
    // An older server without the field: no migration lines and no error.
    for m in h.async_migrations.iter().flatten() {
        if let Some(line) = migration_line(m, now_ms, dismissed) {
            lines.push(line);
        }
    }
    if let Some(sources) = &h.ingest_liveness {
        for text in crate::liveness::banner_lines(sources, now_ms.div_euclid(1000)) {
            lines.push(Line {
                kind: LineKind::IngestSource,
                name: None,
                text,
            });
        }
    }
    Banner { lines }
}

/// The line for one migration, or `None` when it has nothing to say.
pub fn migration_line(
    m: &MigrationInfo,
    now_ms: i64,
    dismissed: &BTreeSet<String>,
) -> Option<Line> {
    let name = Some(m.name.clone());
    let pct = percent(m.rows_processed, m.rows_total);
    let counts = format!(
        "{}: {} / {} ({})",
        m.name,
        thousands(m.rows_processed),
        thousands(m.rows_total),
        m.percent_text()
    );
    match m.status {
        MigrationStatus::Pending
            if m.rows_processed == 0
                && m.estimated_sec.is_some_and(|e| e.is_finite() && e >= 0.0) =>
        {
            // Not started: no rate yet, but the pre-flight estimate.
            Some(Line {
                kind: LineKind::Progress { percent: pct },
                name,
                text: format!(
                    "{}: not started · {}",
                    m.name,
                    m.eta_text().unwrap_or_default()
                ),
            })
        }
        MigrationStatus::Throttled => {
            let reason = m
                .throttle_reason
                .as_deref()
                .unwrap_or("the database is under strain");
            Some(Line {
                kind: LineKind::Throttled { percent: pct },
                name,
                text: format!("{counts} · throttled: {reason} (resumes by itself)"),
            })
        }
        MigrationStatus::Pending | MigrationStatus::Running => {
            let mut text = format!("{counts} · {}/s", rate(m.rate_per_sec));
            if let Some(left) = m.eta_sec.and(m.eta_text()) {
                text.push_str(&format!(" · {left}"));
            }
            Some(Line {
                kind: LineKind::Progress { percent: pct },
                name,
                text,
            })
        }
        MigrationStatus::Paused => Some(Line {
            kind: LineKind::Paused { percent: pct },
            name,
            // A pause the server made (the disk is full, say) says why.
            text: match &m.error {
                Some(reason) => format!("{counts} · paused: {reason}"),
                None => format!("{counts} · paused"),
            },
        }),
        MigrationStatus::Failed => {
            let key = dismiss_key(&m.name, m.ended_at.as_deref());
            if dismissed.contains(&key) || auto_dismissed(m.ended_at.as_deref(), now_ms) {
                return None;
            }
            let error = m
                .error
                .as_deref()
                .unwrap_or("no error message was recorded");
            Some(Line {
                kind: LineKind::Failed { dismiss_key: key },
                name,
                text: format!("{} failed: {error}", m.name),
            })
        }
        MigrationStatus::Unowned => {
            let key = dismiss_key(&m.name, m.settled_at());
            if dismissed.contains(&key) || auto_dismissed(m.settled_at(), now_ms) {
                return None;
            }
            let why = m.error.as_deref().unwrap_or("another program owns it");
            Some(Line {
                kind: LineKind::Unowned { dismiss_key: key },
                name,
                text: format!("{}: not run by meshscope — {why}", m.name),
            })
        }
        MigrationStatus::Unknown => {
            let mut text = format!("{}: status unknown", m.name);
            if let Some(e) = &m.error {
                text.push_str(&format!(" — {e}"));
            }
            Some(Line {
                kind: LineKind::Unknown,
                name,
                text,
            })
        }
        MigrationStatus::Done | MigrationStatus::Cancelled => None,
    }
}

/// True once a failure is more than [`AUTO_DISMISS_MS`] old (`ended_at`: its
/// end, or for an unowned row when it last changed). A missing or
/// unparseable time never expires: the operator must see that line.
pub fn auto_dismissed(ended_at: Option<&str>, now_ms: i64) -> bool {
    match ended_at.and_then(parse_time_ms) {
        Some(ended) => now_ms.saturating_sub(ended) > AUTO_DISMISS_MS,
        None => false,
    }
}

/// How long to wait before polling `/api/healthz` again (used only when the
/// event stream is unavailable): often while the banner is up, rarely when steady.
pub fn poll_interval_ms(b: &Banner) -> u32 {
    if b.is_steady() {
        POLL_STEADY_MS
    } else {
        POLL_BUSY_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDED: &str = "2026-01-01T00:00:00.000Z";

    fn ended_ms() -> i64 {
        parse_time_ms(ENDED).unwrap()
    }

    fn info(name: &str, status: MigrationStatus) -> MigrationInfo {
        MigrationInfo {
            name: name.into(),
            status,
            started_at: Some("2025-12-31T23:59:00.000Z".into()),
            ended_at: None,
            last_update_at: None,
            rows_processed: 1_234_567,
            rows_total: 2_469_134,
            attempts: 1,
            elapsed_sec: 60.0,
            rate_per_sec: 20_576.1,
            eta_sec: Some(119.0),
            percent: 50.0,
            error: None,
            throttle_reason: None,
            throttled_until: None,
            estimated_sec: None,
        }
    }

    fn failed(name: &str, ended_at: Option<&str>, error: &str) -> MigrationInfo {
        MigrationInfo {
            status: MigrationStatus::Failed,
            ended_at: ended_at.map(Into::into),
            error: Some(error.into()),
            eta_sec: None,
            ..info(name, MigrationStatus::Failed)
        }
    }

    fn health(list: Option<Vec<MigrationInfo>>) -> Healthz {
        Healthz {
            ready: true,
            version: "0.1.0".into(),
            uptime_sec: 5,
            async_migrations_running: list.as_deref().map(crate::migration::any_in_progress),
            async_migrations: list,
            async_migrations_error: None,
            ingest_liveness: None,
        }
    }

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    fn texts(b: &Banner) -> Vec<&str> {
        b.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn a_throttled_migration_says_why_and_keeps_the_banner_up() {
        let mut m = info("m", MigrationStatus::Throttled);
        m.throttle_reason = Some("WAL is 300 MB; waiting for the checkpoint to catch up".into());
        let h = health(Some(vec![m]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert!(b.visible());
        assert_eq!(b.lines[0].kind, LineKind::Throttled { percent: 50.0 });
        assert_eq!(
            texts(&b),
            [
                "m: 1,234,567 / 2,469,134 (50%) · throttled: WAL is 300 MB; waiting for the \
              checkpoint to catch up (resumes by itself)"
            ]
        );
    }

    #[test]
    fn a_pending_migration_shows_its_estimate_before_any_rate() {
        let mut m = info("m", MigrationStatus::Pending);
        m.rows_processed = 0;
        m.rate_per_sec = 0.0;
        m.eta_sec = None;
        m.estimated_sec = Some(420.0);
        let h = health(Some(vec![m.clone()]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert_eq!(texts(&b), ["m: not started · about 7 min (estimated)"]);
        m.estimated_sec = None;
        let h = health(Some(vec![m]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert_eq!(texts(&b), ["m: 0 / 2,469,134 (0%) · 0/s"]);
    }

    #[test]
    fn unreachable_keeps_the_banner_up() {
        let b = banner(HealthRead::Failed, 0, &none());
        assert!(b.visible());
        assert_eq!(texts(&b), [UNREACHABLE]);
        assert_eq!(b.lines[0].kind, LineKind::Unreachable);
        assert_eq!(poll_interval_ms(&b), POLL_BUSY_MS);
    }

    #[test]
    fn status_error_line() {
        let mut h = health(None);
        h.async_migrations_error = Some("database is locked".into());
        h.async_migrations_running = Some(true);
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert!(b.visible());
        assert_eq!(
            texts(&b),
            ["Migration status unavailable: database is locked"]
        );
        assert_eq!(b.lines[0].kind, LineKind::StatusError);
    }

    #[test]
    fn running_line_has_separators_rate_and_eta() {
        let h = health(Some(vec![info("tx_backfill", MigrationStatus::Running)]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert!(b.visible());
        assert_eq!(
            texts(&b),
            ["tx_backfill: 1,234,567 / 2,469,134 (50%) · 20,576/s · about 2 min left"]
        );
        assert_eq!(b.lines[0].kind, LineKind::Progress { percent: 50.0 });
        assert_eq!(b.lines[0].name.as_deref(), Some("tx_backfill"));
    }

    #[test]
    fn pending_line_without_eta() {
        let mut m = info("m", MigrationStatus::Pending);
        m.rows_processed = 0;
        m.rows_total = 0;
        m.rate_per_sec = 0.0;
        m.eta_sec = None;
        let h = health(Some(vec![m]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert_eq!(texts(&b), ["m: 0 / 0 (0%) · 0/s"]);
        assert_eq!(b.lines[0].kind, LineKind::Progress { percent: 0.0 });
    }

    #[test]
    fn zero_over_zero_is_zero_percent_not_nan() {
        let mut m = info("m", MigrationStatus::Running);
        m.rows_processed = 0;
        m.rows_total = 0;
        m.percent = f64::NAN; // whatever the server sent, the banner recomputes
        let b = migration_line(&m, 0, &none()).unwrap();
        assert_eq!(b.kind, LineKind::Progress { percent: 0.0 });
        assert!(b.text.contains("(0%)"), "{}", b.text);
        assert!(!b.text.contains("NaN"), "{}", b.text);
    }

    #[test]
    fn processed_over_total_is_one_hundred_percent() {
        let mut m = info("m", MigrationStatus::Running);
        m.rows_processed = 1_500;
        m.rows_total = 1_000;
        let b = migration_line(&m, 0, &none()).unwrap();
        assert_eq!(b.kind, LineKind::Progress { percent: 100.0 });
        assert!(b.text.starts_with("m: 1,500 / 1,000 (100%)"), "{}", b.text);
    }

    #[test]
    fn nearly_done_never_reads_one_hundred() {
        let mut m = info("m", MigrationStatus::Running);
        m.rows_processed = 999;
        m.rows_total = 1_000;
        m.eta_sec = Some(0.3);
        let b = migration_line(&m, 0, &none()).unwrap();
        assert!(b.text.contains("(99%)"), "{}", b.text);
        assert!(b.text.ends_with("· under 1 s left"), "{}", b.text);
    }

    #[test]
    fn paused_line_says_paused_instead_of_rate() {
        let mut m = info("m", MigrationStatus::Paused);
        m.eta_sec = None;
        let h = health(Some(vec![m]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert!(b.visible());
        assert_eq!(texts(&b), ["m: 1,234,567 / 2,469,134 (50%) · paused"]);
        assert_eq!(b.lines[0].kind, LineKind::Paused { percent: 50.0 });
    }

    #[test]
    fn failed_line_is_dismissable_by_name_and_end() {
        let h = health(Some(vec![failed("m", Some(ENDED), "disk full")]));
        let b = banner(HealthRead::Ok(&h), ended_ms(), &none());
        assert!(b.visible());
        assert_eq!(texts(&b), ["m failed: disk full"]);
        let key = dismiss_key("m", Some(ENDED));
        assert_eq!(
            b.lines[0].kind,
            LineKind::Failed {
                dismiss_key: key.clone()
            }
        );
        let dismissed: BTreeSet<String> = [key].into();
        let b = banner(HealthRead::Ok(&h), ended_ms(), &dismissed);
        assert!(!b.visible(), "a dismissed failure leaves a steady banner");
        assert!(b.lines.is_empty());
    }

    #[test]
    fn dismissal_only_hides_that_failure() {
        let dismissed: BTreeSet<String> = [dismiss_key("m", Some(ENDED))].into();
        let later = "2026-01-01T00:05:00.000Z";
        let h = health(Some(vec![failed("m", Some(later), "again")]));
        let b = banner(HealthRead::Ok(&h), ended_ms(), &dismissed);
        assert_eq!(texts(&b), ["m failed: again"]);
        let h = health(Some(vec![failed("other", Some(ENDED), "x")]));
        let b = banner(HealthRead::Ok(&h), ended_ms(), &dismissed);
        assert_eq!(texts(&b), ["other failed: x"]);
    }

    #[test]
    fn failure_auto_dismisses_just_after_ten_minutes() {
        let h = health(Some(vec![failed("m", Some(ENDED), "boom")]));
        let at = |now| banner(HealthRead::Ok(&h), now, &none());
        assert!(at(ended_ms()).visible());
        assert!(at(ended_ms() + AUTO_DISMISS_MS).visible(), "exactly 10 min");
        let b = at(ended_ms() + AUTO_DISMISS_MS + 1);
        assert!(!b.visible(), "10 min + 1 ms");
        assert!(b.lines.is_empty());
    }

    #[test]
    fn missing_or_malformed_end_never_auto_dismisses() {
        let far = ended_ms() + 365 * 24 * 3_600_000;
        for ended in [None, Some("not a time"), Some("")] {
            let h = health(Some(vec![failed("m", ended, "boom")]));
            let b = banner(HealthRead::Ok(&h), far, &none());
            assert!(b.visible(), "endedAt {ended:?}");
            assert_eq!(texts(&b), ["m failed: boom"]);
        }
    }

    #[test]
    fn failed_without_message_still_says_so() {
        let mut m = failed("m", Some(ENDED), "");
        m.error = None;
        let b = migration_line(&m, ended_ms(), &none()).unwrap();
        assert_eq!(b.text, "m failed: no error message was recorded");
    }

    #[test]
    fn unknown_status_is_shown_and_not_steady() {
        let mut m = info("m", MigrationStatus::Unknown);
        m.error = Some("unrecognised stored status \"complete\"".into());
        let h = health(Some(vec![m]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert!(b.visible());
        assert_eq!(b.lines[0].kind, LineKind::Unknown);
        assert_eq!(
            b.lines[0].text,
            "m: status unknown — unrecognised stored status \"complete\""
        );
        assert_eq!(poll_interval_ms(&b), POLL_BUSY_MS);
    }

    #[test]
    fn done_and_cancelled_are_steady() {
        let h = health(Some(vec![
            info("a", MigrationStatus::Done),
            info("b", MigrationStatus::Cancelled),
        ]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert!(!b.visible());
        assert!(b.lines.is_empty());
        assert_eq!(poll_interval_ms(&b), POLL_STEADY_MS);
        let h = health(Some(vec![]));
        assert!(
            !banner(HealthRead::Ok(&h), 0, &none()).visible(),
            "no migrations"
        );
    }

    #[test]
    fn older_healthz_without_the_field_shows_nothing() {
        let h: Healthz =
            serde_json::from_str(r#"{"ready":true,"version":"0.0.9","uptimeSec":3}"#).unwrap();
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert!(!b.visible());
        assert!(b.lines.is_empty());
    }

    #[test]
    fn not_ready_is_not_steady() {
        let mut h = health(Some(vec![]));
        h.ready = false;
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert!(b.visible());
        assert_eq!(b.lines[0].kind, LineKind::NotReady);
    }

    #[test]
    fn a_pause_the_server_made_says_why() {
        let mut m = info("m", MigrationStatus::Paused);
        m.error = Some("the database disk is full".into());
        let h = health(Some(vec![m]));
        let b = banner(HealthRead::Ok(&h), 0, &none());
        assert_eq!(
            texts(&b),
            ["m: 1,234,567 / 2,469,134 (50%) · paused: the database disk is full"]
        );
    }

    #[test]
    fn an_unowned_row_shows_like_a_failure_and_goes_like_one() {
        let mut m = info("corescope_only_v1", MigrationStatus::Unowned);
        m.started_at = Some("2026-01-01 00:00:00".into());
        m.error = Some("meshscope does not run this migration".into());
        let h = health(Some(vec![m]));
        // Not work in progress: steady unless shown, shown like a failure.
        assert_eq!(h.async_migrations_running, Some(false));
        let b = banner(HealthRead::Ok(&h), ended_ms(), &none());
        assert!(b.visible());
        assert_eq!(
            texts(&b),
            ["corescope_only_v1: not run by meshscope — meshscope does not run this migration"]
        );
        let LineKind::Unowned { dismiss_key: key } = b.lines[0].kind.clone() else {
            panic!("{:?}", b.lines[0].kind)
        };
        assert_eq!(key, "corescope_only_v1@2026-01-01 00:00:00");
        let gone = banner(HealthRead::Ok(&h), ended_ms(), &BTreeSet::from([key]));
        assert!(gone.is_steady(), "dismissed");
        // Auto-dismissed by the failures' rule, from when it last changed.
        assert!(banner(HealthRead::Ok(&h), ended_ms() + AUTO_DISMISS_MS, &none()).visible());
        assert!(banner(
            HealthRead::Ok(&h),
            ended_ms() + AUTO_DISMISS_MS + 1,
            &none()
        )
        .is_steady());
    }

    #[test]
    fn auto_dismiss_reads_sqlite_datetime_text() {
        let ended = parse_time_ms("2026-11-27 07:33:12").unwrap();
        assert!(!auto_dismissed(
            Some("2026-11-27 07:33:12"),
            ended + AUTO_DISMISS_MS
        ));
        assert!(auto_dismissed(
            Some("2026-11-27 07:33:12"),
            ended + AUTO_DISMISS_MS + 1
        ));
    }

    #[test]
    fn steady_only_when_every_rule_holds() {
        // Each row breaks exactly one condition of steady state.
        let ok = health(Some(vec![info("d", MigrationStatus::Done)]));
        assert!(banner(HealthRead::Ok(&ok), 0, &none()).is_steady());
        let mut not_ready = ok.clone();
        not_ready.ready = false;
        let mut status_err = ok.clone();
        status_err.async_migrations_error = Some("e".into());
        let with = |s: MigrationStatus| health(Some(vec![info("m", s)]));
        let failing = health(Some(vec![failed("m", Some(ENDED), "x")]));
        let cases = [
            ("not ready", not_ready),
            ("status error", status_err),
            ("pending", with(MigrationStatus::Pending)),
            ("running", with(MigrationStatus::Running)),
            ("paused", with(MigrationStatus::Paused)),
            ("unknown", with(MigrationStatus::Unknown)),
            ("failed, visible", failing),
        ];
        for (what, h) in cases {
            let b = banner(HealthRead::Ok(&h), ended_ms(), &none());
            assert!(b.visible(), "{what} must keep the banner up");
            assert!(!b.lines.is_empty(), "{what} must say why");
        }
    }

    #[test]
    fn lines_keep_the_servers_order_and_text_stays_text() {
        let h = health(Some(vec![
            failed("a", Some(ENDED), "<script>alert(1)</script>"),
            info("b", MigrationStatus::Running),
        ]));
        let b = banner(HealthRead::Ok(&h), ended_ms(), &none());
        assert_eq!(b.lines.len(), 2);
        assert_eq!(b.lines[0].text, "a failed: <script>alert(1)</script>");
        assert_eq!(b.lines[1].name.as_deref(), Some("b"));
    }

    #[test]
    fn silent_ingest_sources_get_a_line() {
        use crate::api::SourceLiveness;
        let mut h = health(Some(vec![]));
        let now_ms = 1_800_000_000_000;
        let mut sources = std::collections::BTreeMap::new();
        sources.insert(
            "broker-a".to_string(),
            SourceLiveness {
                connected: true,
                last_receipt_unix: Some(1_800_000_000 - 600),
                last_message_unix: Some(1_800_000_000 - 600),
                messages: 10,
                rejected: 0,
                stalled: None,
                last_error: None,
                dated_at_receipt: Default::default(),
            },
        );
        h.ingest_liveness = Some(sources);
        let b = banner(HealthRead::Ok(&h), now_ms, &BTreeSet::new());
        assert!(b.visible());
        assert_eq!(b.lines[0].kind, LineKind::IngestSource);
        assert_eq!(b.lines[0].text, "No packets from broker-a in 10 min");
    }
}
