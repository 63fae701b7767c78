//! Commands of the diagnostics and first-run screens. Thin like the others: the
//! work is in `clinic_desk_core::diagnostics` and `clinic_install`.

use std::sync::RwLock;

use clinic_desk_core::{
    ApiError, ConnectionTestDto, DiagnosticsDto, ErrorCode, ProvisionOutcomeDto, SupportBundleDto,
};
use clinic_install::Setup;
use tauri::State;

use crate::commands::DeskState;

/// What the app found at start, updated when the first-run screen provisions it.
pub struct SetupState(pub RwLock<Setup>);

impl SetupState {
    fn get(&self) -> Setup {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn desk(state: &State<'_, DeskState>) -> Result<clinic_desk_core::Desk, ApiError> {
    state.0.clone()
}

#[tauri::command]
pub async fn diagnostics(
    state: State<'_, DeskState>,
    setup: State<'_, SetupState>,
) -> Result<DiagnosticsDto, ApiError> {
    let (desk, setup) = (desk(&state)?, setup.get());
    blocking(move || desk.diagnostics(&setup)).await
}

#[tauri::command]
pub async fn test_connection(setup: State<'_, SetupState>) -> Result<ConnectionTestDto, ApiError> {
    let profile = setup.get().profile();
    Ok(clinic_desk_core::test_connection(&profile).await)
}

#[tauri::command]
pub async fn export_support_bundle(
    state: State<'_, DeskState>,
    setup: State<'_, SetupState>,
) -> Result<SupportBundleDto, ApiError> {
    let (desk, setup) = (desk(&state)?, setup.get());
    blocking(move || {
        let out = clinic_install::paths::bundle_dir(&setup.data_dir);
        desk.export_support_bundle(&setup, &out)
    })
    .await
}

#[tauri::command]
pub async fn provision_device(
    state: State<'_, DeskState>,
    setup: State<'_, SetupState>,
    code: String,
) -> Result<ProvisionOutcomeDto, ApiError> {
    let desk = desk(&state)?;
    let (outcome, saved) = desk.provision_from_code(&setup.get(), &code).await?;
    if let Some(profile) = saved {
        let effective = {
            let mut s = setup.0.write().unwrap_or_else(|e| e.into_inner());
            s.layers.provisioned = Some(profile);
            s.problems.clear();
            s.profile()
        };
        if !outcome.restart_needed {
            crate::start_sync(&desk, &effective);
        }
    }
    Ok(outcome)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("command panicked: {e}")))?
}
