//! Tauri commands: unpack state, run the core's method off the async runtime, return
//! its DTO or its `{code, message}` error. No logic lives here.

use clinic_desk_core::{
    ApiError, AppInfo, AssessmentInput, AuditEntryDto, CorrectionInput, DaySchedule, Desk,
    DoctorDto, ErrorCode, ExportDto, PainReportDto, PatientDetail, PatientSearch,
    PendingReassessmentDto, SessionDto, StaffDto, SyncStatusDto,
};
use tauri::State;
use tauri::ipc::Channel;

/// The opened store, or why it could not be opened (e.g. written by a newer
/// version): the window still opens and every command says why it cannot work.
pub struct DeskState(pub Result<Desk, ApiError>);

async fn on_desk<T: Send + 'static>(
    state: State<'_, DeskState>,
    f: impl FnOnce(&Desk) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let desk = state.0.clone()?;
    tauri::async_runtime::spawn_blocking(move || f(&desk))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("command panicked: {e}")))?
}

#[tauri::command]
pub async fn app_info(state: State<'_, DeskState>) -> Result<AppInfo, ApiError> {
    on_desk(state, |d| d.app_info()).await
}

#[tauri::command]
pub async fn search_patients(
    state: State<'_, DeskState>,
    query: String,
) -> Result<PatientSearch, ApiError> {
    on_desk(state, move |d| d.search_patients(&query)).await
}

#[tauri::command]
pub async fn get_patient(
    state: State<'_, DeskState>,
    id: String,
) -> Result<PatientDetail, ApiError> {
    on_desk(state, move |d| d.patient(&id)).await
}

#[tauri::command]
pub async fn list_doctors(state: State<'_, DeskState>) -> Result<Vec<DoctorDto>, ApiError> {
    on_desk(state, |d| d.doctors()).await
}

#[tauri::command]
pub async fn day_schedule(
    state: State<'_, DeskState>,
    date: Option<String>,
    doctor_id: Option<String>,
) -> Result<DaySchedule, ApiError> {
    on_desk(state, move |d| {
        d.day_schedule(date.as_deref(), doctor_id.as_deref())
    })
    .await
}

#[tauri::command]
pub async fn record_pain_report(
    state: State<'_, DeskState>,
    input: AssessmentInput,
) -> Result<PainReportDto, ApiError> {
    on_desk(state, move |d| d.record_assessment(&input)).await
}

#[tauri::command]
pub async fn patient_reports(
    state: State<'_, DeskState>,
    patient_id: String,
) -> Result<Vec<PainReportDto>, ApiError> {
    on_desk(state, move |d| d.patient_reports(&patient_id)).await
}

#[tauri::command]
pub async fn retry_rejected_report(
    state: State<'_, DeskState>,
    report_id: String,
) -> Result<PainReportDto, ApiError> {
    on_desk(state, move |d| d.retry_rejected_report(&report_id)).await
}

#[tauri::command]
pub async fn correct_report(
    state: State<'_, DeskState>,
    report_id: String,
    input: CorrectionInput,
) -> Result<PainReportDto, ApiError> {
    on_desk(state, move |d| d.correct_report(&report_id, &input)).await
}

#[tauri::command]
pub async fn report_history(
    state: State<'_, DeskState>,
    report_id: String,
) -> Result<Vec<AuditEntryDto>, ApiError> {
    on_desk(state, move |d| d.report_history(&report_id)).await
}

#[tauri::command]
pub async fn pending_reassessments(
    state: State<'_, DeskState>,
) -> Result<Vec<PendingReassessmentDto>, ApiError> {
    on_desk(state, |d| d.pending_reassessments()).await
}

#[tauri::command]
pub async fn export_fhir(
    state: State<'_, DeskState>,
    patient_id: Option<String>,
) -> Result<ExportDto, ApiError> {
    on_desk(state, move |d| d.export_fhir(patient_id.as_deref())).await
}

#[tauri::command]
pub async fn list_staff(state: State<'_, DeskState>) -> Result<Vec<StaffDto>, ApiError> {
    on_desk(state, |d| d.staff()).await
}

#[tauri::command]
pub async fn staff_session(
    state: State<'_, DeskState>,
    active: bool,
) -> Result<SessionDto, ApiError> {
    on_desk(state, move |d| d.staff_session(active)).await
}

#[tauri::command]
pub async fn sign_in(
    state: State<'_, DeskState>,
    staff_id: String,
    pin: String,
) -> Result<SessionDto, ApiError> {
    on_desk(state, move |d| d.sign_in(&staff_id, &pin)).await
}

#[tauri::command]
pub async fn sign_out(state: State<'_, DeskState>) -> Result<SessionDto, ApiError> {
    on_desk(state, |d| d.sign_out()).await
}

#[tauri::command]
pub async fn sync_status(state: State<'_, DeskState>) -> Result<SyncStatusDto, ApiError> {
    on_desk(state, |d| d.sync_status()).await
}

#[tauri::command]
pub async fn sync_now(state: State<'_, DeskState>) -> Result<(), ApiError> {
    on_desk(state, |d| d.sync_now()).await
}

/// Pushes the sync status down `channel` now and on every change, until the
/// window goes away (a failed send ends the task). No polling.
#[tauri::command]
pub async fn subscribe_sync_status(
    state: State<'_, DeskState>,
    channel: Channel<SyncStatusDto>,
) -> Result<(), ApiError> {
    let desk = state.0.clone()?;
    let first = on_desk(state, |d| d.sync_status()).await?;
    if channel.send(first).is_err() {
        return Ok(());
    }
    let Some(handle) = desk.sync_handle() else {
        return Ok(()); // no engine: the status only changes when a report is saved (the UI re-asks then)
    };
    let mut rx = handle.subscribe();
    tauri::async_runtime::spawn(async move {
        while rx.changed().await.is_ok() {
            let status = SyncStatusDto::try_from(&*rx.borrow_and_update());
            let Ok(status) = status.inspect_err(|e| tracing::error!(error = %e, "sync status"))
            else {
                continue;
            };
            if channel.send(status).is_err() {
                break;
            }
        }
    });
    Ok(())
}
