//! The TypeScript declarations the UI imports, generated from the DTOs and from the
//! domain types the UI receives as they are (clinic-domain's `ts` feature).
//! `ui/src/lib/bindings.ts` is committed; a test fails when it is stale, and
//! `UPDATE_BINDINGS=1 cargo test -p clinic-desk-core bindings` rewrites it.

use clinic_domain::lookup::MatchKind;
use clinic_domain::pain::PainBand;
use clinic_domain::ward::Trend;
use clinic_domain::{Activity, AppointmentStatus, AssessmentForm, PainScale, Reassessment, Sex};
use ts_rs::{Config, TS};

use crate::*;

pub fn typescript() -> String {
    let cfg = Config::new();
    let decls = [
        ErrorCode::decl(&cfg),
        ApiError::decl(&cfg),
        AppInfo::decl(&cfg),
        Sex::decl(&cfg),
        MatchKind::decl(&cfg),
        PatientSummary::decl(&cfg),
        PatientSearch::decl(&cfg),
        PatientDetail::decl(&cfg),
        DoctorDto::decl(&cfg),
        AppointmentStatus::decl(&cfg),
        AppointmentDto::decl(&cfg),
        DaySchedule::decl(&cfg),
        PainScale::decl(&cfg),
        ReportStateDto::decl(&cfg),
        PainBand::decl(&cfg),
        Activity::decl(&cfg),
        Reassessment::decl(&cfg),
        PainReportDto::decl(&cfg),
        AssessmentForm::decl(&cfg),
        AssessmentInput::decl(&cfg),
        CorrectionInput::decl(&cfg),
        PendingReassessmentDto::decl(&cfg),
        Trend::decl(&cfg),
        WardPatientDto::decl(&cfg),
        WardBoardDto::decl(&cfg),
        StaffDto::decl(&cfg),
        SessionStateDto::decl(&cfg),
        clinic_domain::roles::Access::decl(&cfg),
        SessionDto::decl(&cfg),
        AuditEntryDto::decl(&cfg),
        ExportDto::decl(&cfg),
        SyncProblemKindDto::decl(&cfg),
        BootstrapPhaseDto::decl(&cfg),
        BootstrapProgressDto::decl(&cfg),
        SyncProblemDto::decl(&cfg),
        SyncStatusDto::decl(&cfg),
        SettingsSourceDto::decl(&cfg),
        StoreKeyDto::decl(&cfg),
        PulledStreamDto::decl(&cfg),
        SetAsideDto::decl(&cfg),
        DiagnosticsDto::decl(&cfg),
        ConnectionFailureDto::decl(&cfg),
        ConnectionTestDto::decl(&cfg),
        ProvisionOutcomeDto::decl(&cfg),
        SupportBundleDto::decl(&cfg),
    ];
    let mut out = String::from(
        "// Generated from crates/desk by `UPDATE_BINDINGS=1 cargo test -p clinic-desk-core bindings`. Do not edit.\n\n",
    );
    for decl in decls {
        out.push_str("export ");
        out.push_str(&decl);
        out.push_str("\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn bindings_in_the_ui_are_current() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/bindings.ts");
        let fresh = super::typescript();
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/lib/bindings.ts is stale: run `UPDATE_BINDINGS=1 cargo test -p clinic-desk-core bindings` and commit it"
        );
    }
}
