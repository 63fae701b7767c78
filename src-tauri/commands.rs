//! Tauri commands: unpack state, run the core's method off the async runtime, return
//! its DTO or its `{code, message}` error. No logic lives here.

use clinic_desk_core::{
    ApiError, AppInfo, DaySchedule, Desk, DoctorDto, ErrorCode, PatientDetail, PatientSearch,
};
use tauri::State;

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
pub async fn search_patients(state: State<'_, DeskState>, query: String) -> Result<PatientSearch, ApiError> {
    on_desk(state, move |d| d.search_patients(&query)).await
}

#[tauri::command]
pub async fn get_patient(state: State<'_, DeskState>, id: String) -> Result<PatientDetail, ApiError> {
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
    on_desk(state, move |d| d.day_schedule(date.as_deref(), doctor_id.as_deref())).await
}
