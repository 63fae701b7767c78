//! The ward pain board: every patient with a current assessment in the window,
//! their latest and previous current scores, and the earliest reassessment they
//! are still owed, most urgent first (`clinic_domain::ward`'s order).
//!
//! It reads `pain_reports` alone, whoever recorded a report and on which device:
//! a report received from another device is a row like this device's own, so it is
//! on the board the moment it is stored.
//!
//! # The plan (one statement)
//!
//! 1. `recent`: `SEARCH r USING INDEX pain_reports_by_assessed_at (assessed_at>?)`,
//!    one range of the window's reports, each checked for being current by the
//!    `pain_reports_by_supersedes` index (and a resolution by `report_resolutions_by_resolves`); the patients kept once (a temp
//!    B-tree for `DISTINCT`, a ward's size). `INDEXED BY` holds it there: left to
//!    itself, SQLite may walk all of `pain_reports_by_patient` to get `DISTINCT`
//!    for free, which reads the whole history.
//! 2. For each of those patients, by primary key, and in three scalar subqueries:
//!    the latest and the previous current report walk `pain_reports_by_patient`
//!    backwards from the newest (`patient_id=?`, newest `assessed_at` first) and
//!    stop after one or two current reports (the report ID orders a tie within one
//!    second: `USE TEMP B-TREE FOR LAST TERM OF ORDER BY` sorts each second's
//!    reports, and the walk still stops early: 300 patients of 2,000 reports each
//!    take about 12 ms for both); the reassessment owed is the first owed report of the
//!    patient's own `pain_reports_awaiting_reassessment_by_patient` entries
//!    (migration 0007), checked against the supersedes and follow-up indexes.
//! 3. The latest and previous rows by primary key, the recorder's name from `staff`
//!    by primary key.
//!
//! Nothing scans the table: the cost grows with the ward's patients in the window
//! and their interventions, not with the history (`the_plan_searches_indexes_only`
//! holds it).

use chrono::{DateTime, Utc};
use clinic_domain::ward::{self, Trend, Urgency};
use clinic_domain::{PainScale, PainScore};
use rusqlite::{Connection, Row, params};

use crate::StoreError;
use crate::column::Text;
use crate::standing_sql::{OWED, live};

/// What makes the report aliased `r` a record's current value, the one place the
/// board decides it: live, and not outranked by a live sibling correction of the
/// same report (two devices correcting one record offline), which
/// `clinic_domain::corrections` orders by (`recorded_at`, ID). A conflict between
/// corrections of different depths (one branch corrected again before the
/// devices met) is not a sibling pair: the board then shows each branch's live
/// report as current until a nurse resolves it, while the patient page shows the
/// one the rule picks and flags the record.
const CURRENT: &str = concat!(
    live!("r"),
    " AND (r.supersedes IS NULL OR NOT EXISTS (
             SELECT 1 FROM pain_reports s WHERE s.supersedes = r.supersedes AND s.id <> r.id
             AND (s.recorded_at, s.id) > (r.recorded_at, r.id) AND ",
    live!("s"),
    "))"
);

fn board_sql() -> String {
    format!(
        "WITH recent AS (
             SELECT DISTINCT r.patient_id FROM pain_reports r INDEXED BY pain_reports_by_assessed_at
             WHERE r.assessed_at >= ?1 AND ({CURRENT})
         ),
         board AS MATERIALIZED (
             SELECT p.id AS patient_id, p.name AS patient_name,
                 (SELECT r.id FROM pain_reports r WHERE r.patient_id = p.id AND ({CURRENT})
                  ORDER BY r.assessed_at DESC, r.id DESC LIMIT 1) AS latest_id,
                 (SELECT r.id FROM pain_reports r WHERE r.patient_id = p.id AND ({CURRENT})
                  ORDER BY r.assessed_at DESC, r.id DESC LIMIT 1 OFFSET 1) AS previous_id,
                 (SELECT r.reassess_due_at FROM pain_reports r
                  WHERE r.patient_id = p.id AND r.reassess_due_at IS NOT NULL AND ({CURRENT}) AND ({OWED})
                  ORDER BY r.reassess_due_at LIMIT 1) AS reassess_due_at
             FROM recent JOIN patients p ON p.id = recent.patient_id
             WHERE p.deleted_at IS NULL
         )
         SELECT b.patient_id, b.patient_name, b.reassess_due_at,
                l.id AS latest_id, l.scale, l.score, l.assessed_at, l.recorded_by,
                s.name AS recorded_by_name, l.device_id,
                v.id AS previous_id, v.scale AS previous_scale, v.score AS previous_score,
                v.assessed_at AS previous_assessed_at
         FROM board b
         JOIN pain_reports l ON l.id = b.latest_id
         LEFT JOIN pain_reports v ON v.id = b.previous_id
         LEFT JOIN staff s ON s.id = l.recorded_by"
    )
}

/// A patient's latest current assessment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub report_id: String,
    pub score: PainScore,
    pub assessed_at: DateTime<Utc>,
    /// Staff ID; the name when this device knows the member.
    pub recorded_by: String,
    pub recorded_by_name: Option<String>,
    pub device_id: String,
}

/// The current assessment before the latest one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    pub score: PainScore,
    pub assessed_at: DateTime<Utc>,
}

/// One patient on the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WardRow {
    pub patient_id: String,
    pub patient_name: String,
    pub latest: Latest,
    pub previous: Option<Previous>,
    /// The earliest reassessment a current assessment of the patient still asks for.
    pub reassess_due_at: Option<DateTime<Utc>>,
}

impl WardRow {
    pub fn trend(&self) -> Trend {
        ward::trend(self.previous.map(|p| p.score), self.latest.score)
    }

    pub fn urgency(&self, now: DateTime<Utc>) -> Urgency<'_> {
        Urgency::new(
            self.latest.score,
            self.latest.assessed_at,
            self.reassess_due_at,
            &self.patient_id,
            now,
        )
    }
}

/// The board at `now` for a window of `hours`, most urgent first.
pub fn board(
    conn: &Connection,
    now: DateTime<Utc>,
    hours: u32,
) -> Result<Vec<WardRow>, StoreError> {
    let since = ward::window_start(now, hours).timestamp();
    let mut stmt = conn.prepare_cached(&board_sql())?;
    let rows = stmt.query_map(params![since], raw_row)?;
    let mut board = rows
        .map(|row| row?.into_row())
        .collect::<Result<Vec<_>, StoreError>>()?;
    board.sort_by(|a, b| a.urgency(now).cmp(&b.urgency(now)));
    Ok(board)
}

/// A row as stored, checked by [`RawRow::into_row`]: a score off its scale or a
/// time out of range is a corrupt row, never shown as a guess.
struct RawRow {
    patient_id: String,
    patient_name: String,
    reassess_due_at: Option<i64>,
    latest_id: String,
    scale: PainScale,
    score: i64,
    assessed_at: i64,
    recorded_by: String,
    recorded_by_name: Option<String>,
    device_id: String,
    /// ID, scale, score, assessed at.
    previous: Option<(String, PainScale, i64, i64)>,
}

fn raw_row(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    let previous_id: Option<String> = r.get("previous_id")?;
    let previous_scale: Option<Text<PainScale>> = r.get("previous_scale")?;
    let previous_score: Option<i64> = r.get("previous_score")?;
    let previous_at: Option<i64> = r.get("previous_assessed_at")?;
    Ok(RawRow {
        patient_id: r.get("patient_id")?,
        patient_name: r.get("patient_name")?,
        reassess_due_at: r.get("reassess_due_at")?,
        latest_id: r.get("latest_id")?,
        scale: r.get::<_, Text<PainScale>>("scale")?.0,
        score: r.get("score")?,
        assessed_at: r.get("assessed_at")?,
        recorded_by: r.get("recorded_by")?,
        recorded_by_name: r.get("recorded_by_name")?,
        device_id: r.get("device_id")?,
        previous: match (previous_id, previous_scale, previous_score, previous_at) {
            (Some(id), Some(Text(scale)), Some(score), Some(at)) => Some((id, scale, score, at)),
            _ => None,
        },
    })
}

fn instant(secs: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| StoreError::CorruptRow(format!("time {secs} out of range")))
}

fn score(scale: PainScale, value: i64, report: &str) -> Result<PainScore, StoreError> {
    PainScore::new(scale, value)
        .map_err(|e| StoreError::CorruptRow(format!("report {report}: {e}")))
}

impl RawRow {
    fn into_row(self) -> Result<WardRow, StoreError> {
        let previous = match self.previous {
            Some((id, scale, value, at)) => Some(Previous {
                score: score(scale, value, &id)?,
                assessed_at: instant(at)?,
            }),
            None => None,
        };
        Ok(WardRow {
            latest: Latest {
                score: score(self.scale, self.score, &self.latest_id)?,
                assessed_at: instant(self.assessed_at)?,
                report_id: self.latest_id,
                recorded_by: self.recorded_by,
                recorded_by_name: self.recorded_by_name,
                device_id: self.device_id,
            },
            previous,
            reassess_due_at: self.reassess_due_at.map(instant).transpose()?,
            patient_id: self.patient_id,
            patient_name: self.patient_name,
        })
    }
}

#[cfg(test)]
mod tests;
