//! The ward pain board (病区疼痛一览) for the nurse in charge: every patient with a
//! current assessment in the clinic's window, most urgent first. The store selects
//! and orders (`clinic_store::ward`), the domain decides the trend, the band, the
//! order and what is overdue (`clinic_domain::ward`); this file shapes it for the UI.

use chrono::{DateTime, Utc};
use clinic_domain::assessment::reassessment_state;
use clinic_domain::pain::PainBand;
use clinic_domain::ward::{DEFAULT_WARD_BOARD_HOURS, Trend};
use clinic_domain::{PainScale, Reassessment};
use clinic_store::{Connection, StoreError, settings, ward};
use serde::Serialize;
use ts_rs::TS;

use crate::{ApiError, Desk};

/// The board as read at `asOf`.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WardBoardDto {
    /// Hours back the board looks (the clinic's setting, 24 unless set).
    pub window_hours: u32,
    /// The clinic's zone: times are shown in it.
    pub time_zone: String,
    /// RFC 3339 of the moment the board was read; `minutesAgo` counts to it.
    pub as_of: String,
    /// Most urgent first: overdue reassessment, then a severe score, then the oldest assessment.
    pub patients: Vec<WardPatientDto>,
}

/// One patient on the board: the latest current score and what came before it.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct WardPatientDto {
    pub patient_id: String,
    pub patient_name: String,
    /// The latest current report (a superseded one never is).
    pub report_id: String,
    pub scale: PainScale,
    pub score: u8,
    pub band: PainBand,
    /// RFC 3339, UTC.
    pub assessed_at: String,
    /// Whole minutes from the assessment to `asOf` (0 for a time a little ahead of this clock).
    pub minutes_ago: u32,
    /// Staff ID; `recordedByName` when this device knows the member.
    pub recorded_by: String,
    pub recorded_by_name: Option<String>,
    pub device_id: String,
    /// Recorded on this device (otherwise received from another).
    pub recorded_here: bool,
    pub trend: Trend,
    /// The current score before the latest one (`trend` compares the two).
    pub previous_score: Option<u8>,
    pub previous_assessed_at: Option<String>,
    /// `not_needed`, `due` or `overdue`: the earliest reassessment the patient is still owed.
    pub reassessment: Reassessment,
    pub reassess_due_at: Option<String>,
}

/// The clinic's window, or the domain's default when it is unset or not a positive number.
fn window_hours(c: &Connection) -> Result<u32, StoreError> {
    Ok(settings::get(c, settings::WARD_BOARD_HOURS)?
        .and_then(|v| v.trim().parse().ok())
        .filter(|h| *h > 0)
        .unwrap_or(DEFAULT_WARD_BOARD_HOURS))
}

impl WardPatientDto {
    fn new(row: &ward::WardRow, now: DateTime<Utc>, here: Option<&str>) -> Self {
        let latest = &row.latest;
        Self {
            patient_id: row.patient_id.clone(),
            patient_name: row.patient_name.clone(),
            report_id: latest.report_id.clone(),
            scale: latest.score.scale(),
            score: latest.score.value(),
            band: latest.score.band(),
            assessed_at: latest.assessed_at.to_rfc3339(),
            minutes_ago: u32::try_from((now - latest.assessed_at).num_minutes().max(0))
                .unwrap_or(u32::MAX),
            recorded_by: latest.recorded_by.clone(),
            recorded_by_name: latest.recorded_by_name.clone(),
            device_id: latest.device_id.clone(),
            recorded_here: here == Some(latest.device_id.as_str()),
            trend: row.trend(),
            previous_score: row.previous.map(|p| p.score.value()),
            previous_assessed_at: row.previous.map(|p| p.assessed_at.to_rfc3339()),
            reassessment: reassessment_state(row.reassess_due_at, false, now),
            reassess_due_at: row.reassess_due_at.map(|d| d.to_rfc3339()),
        }
    }
}

impl Desk {
    /// The ward pain board on this machine's clock (the command's call).
    pub fn ward_board_now(&self) -> Result<WardBoardDto, ApiError> {
        self.ward_board(Utc::now())
    }

    /// The ward pain board at `now`.
    pub fn ward_board(&self, now: DateTime<Utc>) -> Result<WardBoardDto, ApiError> {
        let zone = self.zone()?;
        let (hours, here, rows) = self.db.read(|c| {
            let hours = window_hours(c)?;
            let here = settings::get(c, settings::DEVICE_ID)?;
            let rows = ward::board(c, now, hours)?;
            Ok::<_, StoreError>((hours, here, rows))
        })?;
        Ok(WardBoardDto {
            window_hours: hours,
            time_zone: zone.name().to_owned(),
            as_of: now.to_rfc3339(),
            patients: rows
                .iter()
                .map(|row| WardPatientDto::new(row, now, here.as_deref()))
                .collect(),
        })
    }
}
