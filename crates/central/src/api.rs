//! Request handlers. Validation uses clinic-domain's rules (IDs, names, text,
//! birth dates, phones, pain scales, statuses, ages in the clinic's zone), the
//! same functions the app stores by, so the server never accepts a record a
//! device cannot hold. A refusal is a 400 naming the field.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use clinic_domain::assessment::{DETAIL_TEXT, REASON, check_resolves};
use clinic_domain::{
    Activity, Appointment, AppointmentStatus, AssessmentDetails, ClinicZone, DoctorId, DomainError,
    PainScale, PainScore, Patient, PatientId, Sex, StaffMember, StaffRole, appointment, patient,
    pin, record_id, text,
};
use clinic_protocol::{
    AppointmentUpsert, BatchItemResult, BatchItemStatus, BatchResponse, ChangeAck,
    DUPLICATE_HEADER, EnrolRequest, EnrolResponse, FeedQuery, MAX_FEED_LIMIT, PatientSummary,
    PatientUpsert, ReportSubmission, StaffUpsert, paths,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{self, Scope};
use crate::error::ApiError;
use crate::extract::{
    BatchBody, Caller, Clinic, JsonBody, PathParam, Peer, QueryParams, failed_from,
};
use crate::ingest::NotStored;
use crate::metrics;
use crate::store::{IngestOutcome, NewReport, Redeemed, StoreError};

/// Latest plausible timestamp (9999-12-31): keeps absurd values out of date arithmetic.
const MAX_UNIX: i64 = 253_402_300_799;
/// A device ID is an ID-like label the app makes up; it never needs more.
const MAX_DEVICE_ID_CHARS: usize = 64;
/// A token's label (a ward, a host name).
pub const MAX_TOKEN_LABEL_CHARS: usize = 64;

/// Runs a blocking store call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
        .map_err(ApiError::from)
}

/// A refusal by a domain rule, prefixed with the wire name of the field it concerns.
fn field<T>(name: &str, checked: Result<T, DomainError>) -> Result<T, ApiError> {
    checked.map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

fn unix_time(field: &str, v: i64) -> Result<i64, ApiError> {
    if (0..=MAX_UNIX).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::BadRequest(format!(
            "{field} is not a plausible Unix time in seconds"
        )))
    }
}

/// Optional text kept exactly as sent (it is part of a report's idempotency
/// content), checked by the domain's text rule: length, control and invisible characters.
fn exact_text(
    name: &'static str,
    v: Option<String>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    if let Some(s) = &v {
        field(name, text::check_text(name, s, max, false))?;
    }
    Ok(v)
}

/// The details as sent, checked by the domain's rules for text another system sent
/// (blank is absent, anything else kept exactly), each refusal naming its wire field.
fn validate_details(d: AssessmentDetails) -> Result<AssessmentDetails, ApiError> {
    d.received().map_err(|e| {
        ApiError::BadRequest(match e.field() {
            Some(name) => format!("{name}: {e}"),
            None => e.to_string(),
        })
    })
}

/// Parses one report. The details are `#[serde(flatten)]`ed, and serde's errors
/// from flattened fields do not say which field failed ("unknown variant `run`"),
/// so on failure each detail field is tried on its own to name the culprit.
pub fn parse_submission(v: &Value) -> Result<ReportSubmission, ApiError> {
    ReportSubmission::deserialize(v).map_err(|e| {
        ApiError::BadRequest(
            detail_field_error(v).unwrap_or_else(|| format!("invalid report: {e}")),
        )
    })
}

fn detail_field_error(v: &Value) -> Option<String> {
    fn check<T: DeserializeOwned>(v: &Value, field: &str) -> Option<String> {
        let raw = v.get(field)?;
        Option::<T>::deserialize(raw)
            .err()
            .map(|e| format!("{field}: {e}"))
    }
    DETAIL_TEXT
        .iter()
        .find_map(|rule| check::<String>(v, rule.wire))
        .or_else(|| check::<Activity>(v, "activity"))
        .or_else(|| check::<Uuid>(v, "followsUp"))
        .or_else(|| {
            // Not optional on the wire: absent is empty, `null` is refused.
            let raw = v.get("resolves")?;
            Vec::<Uuid>::deserialize(raw)
                .err()
                .map(|e| format!("resolves: {e}"))
        })
}

pub fn validate_report(clinic_id: &str, r: ReportSubmission) -> Result<NewReport, ApiError> {
    if r.supersedes == Some(r.report_id) {
        return Err(ApiError::BadRequest(
            "a report cannot supersede itself".into(),
        ));
    }
    Ok(NewReport {
        clinic_id: clinic_id.to_owned(),
        report_id: r.report_id,
        patient_id: PatientId::parse(&r.patient_id)?,
        score: PainScore::new(r.scale, r.pain_score)?,
        submit_time: unix_time("submitTime", r.submit_time)?,
        assessed_at: r
            .assessed_at
            .map(|t| unix_time("assessedAt", t))
            .transpose()?,
        recorded_by: field(
            "recordedBy",
            r.recorded_by.as_deref().map(record_id).transpose(),
        )?,
        device_id: exact_text("deviceId", r.device_id, MAX_DEVICE_ID_CHARS)?,
        supersedes: r.supersedes,
        // The device writes a reason with `assessment::correction_reason`: the same rule.
        reason: exact_text(REASON.wire, r.reason, REASON.max)?,
        details: validate_details(r.details)?,
        follows_up: match r.follows_up {
            Some(id) if id == r.report_id => {
                return Err(ApiError::BadRequest(
                    "followsUp cannot be the report's own reportId".into(),
                ));
            }
            other => other,
        },
        resolves: {
            field(
                "resolves",
                check_resolves(&r.report_id, r.supersedes.as_ref(), &r.resolves),
            )?;
            r.resolves
        },
    })
}

fn count_outcome(state: &AppState, o: &IngestOutcome) {
    let counter = match o {
        IngestOutcome::Accepted(_) => &state.metrics.reports_ingested,
        IngestOutcome::Duplicate(_) => &state.metrics.reports_duplicate,
        IngestOutcome::Conflict => &state.metrics.reports_rejected,
    };
    counter.inc();
}

async fn ingest_one(state: &AppState, report: NewReport) -> Result<Response, ApiError> {
    let outcome = state
        .ingest
        .submit(vec![report])
        .await
        .map_err(|_| ApiError::Unavailable)?
        .pop()
        .ok_or_else(|| ApiError::Internal("writer answered without an outcome".into()))?
        .map_err(|NotStored| ApiError::Internal(NotStored.to_string()))?;
    count_outcome(state, &outcome);
    Ok(match outcome {
        IngestOutcome::Accepted(stored) => Json(stored).into_response(),
        IngestOutcome::Duplicate(stored) => {
            let mut resp = Json(stored).into_response();
            resp.headers_mut()
                .insert(DUPLICATE_HEADER, HeaderValue::from_static("true"));
            resp
        }
        IngestOutcome::Conflict => {
            return Err(ApiError::Conflict(
                "a different report with this reportId is already stored; the first one is kept"
                    .into(),
            ));
        }
    })
}

/// `POST /v1/reports` (our server): the client's `reportId` is the idempotency key.
pub async fn post_report(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let report = parse_submission(&body)
        .and_then(|r| validate_report(&clinic, r))
        .inspect_err(|_| {
            state.metrics.reports_rejected.inc();
        })?;
    ingest_one(&state, report).await
}

/// The hospital contract's four fields; a client's `reportId` and any extension are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContractReport {
    patient_id: String,
    pain_score: i64,
    submit_time: i64,
}

/// `POST /v1/reports` in compat mode: like the original server, every POST is a
/// new report under a server-assigned ID.
pub async fn post_report_compat(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    JsonBody(body): JsonBody<ContractReport>,
) -> Result<Response, ApiError> {
    let submission = ReportSubmission {
        report_id: Uuid::now_v7(),
        patient_id: body.patient_id,
        pain_score: body.pain_score,
        submit_time: body.submit_time,
        scale: PainScale::Nrs,
        recorded_by: None,
        device_id: None,
        supersedes: None,
        reason: None,
        assessed_at: None,
        details: Default::default(),
        follows_up: None,
        // The hospital contract has no corrections, so nothing to settle.
        resolves: Vec::new(),
    };
    let report = validate_report(&clinic, submission).inspect_err(|_| {
        state.metrics.reports_rejected.inc();
    })?;
    ingest_one(&state, report).await
}

/// Items stay raw JSON (see [`BatchBody`]) so each one is parsed, and can fail, on its own.
pub async fn post_batch(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    BatchBody(reports): BatchBody,
) -> Result<Json<BatchResponse>, ApiError> {
    let mut results = Vec::with_capacity(reports.len());
    let mut valid = Vec::new();
    let mut valid_at = Vec::new();
    for item in reports {
        let report_id = match item.get("reportId") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let parsed = parse_submission(&item).and_then(|r| validate_report(&clinic, r));
        match parsed {
            Ok(r) => {
                valid_at.push(results.len());
                valid.push(r);
                results.push(BatchItemResult {
                    report_id,
                    status: BatchItemStatus::Accepted,
                    reason: None,
                });
            }
            Err(e) => {
                state.metrics.reports_rejected.inc();
                results.push(BatchItemResult {
                    report_id,
                    status: BatchItemStatus::Rejected,
                    reason: Some(e.to_string()),
                });
            }
        }
    }
    let outcomes = state
        .ingest
        .submit(valid)
        .await
        .map_err(|_| ApiError::Unavailable)?;
    for (i, outcome) in valid_at.into_iter().zip(outcomes) {
        let slot = &mut results[i];
        let Ok(outcome) = outcome else {
            // It failed alone after its group failed: a row the store refuses, so
            // resending it would fail the same way.
            slot.status = BatchItemStatus::Rejected;
            slot.reason = Some(NotStored.to_string());
            continue;
        };
        count_outcome(&state, &outcome);
        match outcome {
            IngestOutcome::Accepted(_) => {}
            IngestOutcome::Duplicate(_) => slot.status = BatchItemStatus::Duplicate,
            IngestOutcome::Conflict => {
                slot.status = BatchItemStatus::Rejected;
                slot.reason =
                    Some("a different report with this reportId is already stored".into());
            }
        }
    }
    Ok(Json(BatchResponse { results }))
}

pub async fn get_patient(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    PathParam(raw): PathParam,
) -> Result<Json<PatientSummary>, ApiError> {
    let id = PatientId::parse(&raw)?;
    let store = state.store.clone();
    let found = blocking(move || store.patient(&clinic, &id)).await?;
    // Another clinic's patient is indistinguishable from no patient: 404, never 403.
    let (patient, zone) = found.ok_or_else(|| ApiError::not_found("patient"))?;
    Ok(Json(PatientSummary {
        age: patient.age_on(zone.today()),
        id: patient.id.to_string(),
        name: patient.name,
        is_insured: patient.is_insured,
    }))
}

pub async fn empty_patient_id() -> ApiError {
    ApiError::BadRequest(clinic_domain::DomainError::EmptyId.to_string())
}

pub async fn feed(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    PathParam(kind): PathParam,
    QueryParams(q): QueryParams<FeedQuery>,
) -> Result<Response, ApiError> {
    if q.after < 0 {
        return Err(ApiError::BadRequest(
            "after must be 0 or a cursor from a previous page".into(),
        ));
    }
    let limit = q.limit.clamp(1, MAX_FEED_LIMIT);
    let store = state.store.clone();
    // The kind is the last segment of the feed's path in `paths`.
    let is = |path: &str| path.strip_prefix(paths::FEEDS) == Some(kind.as_str());
    Ok(if is(paths::FEED_PATIENTS) {
        Json(blocking(move || store.patients_feed(&clinic, q.after, limit)).await?).into_response()
    } else if is(paths::FEED_STAFF) {
        Json(blocking(move || store.staff_feed(&clinic, q.after, limit)).await?).into_response()
    } else if is(paths::FEED_APPOINTMENTS) {
        Json(blocking(move || store.appointments_feed(&clinic, q.after, limit)).await?)
            .into_response()
    } else if is(paths::FEED_REPORTS) {
        Json(blocking(move || store.reports_feed(&clinic, q.after, limit)).await?).into_response()
    } else {
        return Err(ApiError::not_found("feed"));
    })
}

async fn zone_of(state: &AppState, clinic: &str) -> Result<ClinicZone, ApiError> {
    let store = state.store.clone();
    let clinic = clinic.to_owned();
    blocking(move || store.clinic_zone(&clinic))
        .await?
        .ok_or_else(|| ApiError::Internal("authenticated clinic has no row".into()))
}

/// The one rule set for a patient record, field by field with the functions
/// `Patient::new` uses so the error names the field: `PUT /v1/patients/{id}` and
/// `import` both use it.
pub fn validate_patient(
    raw_id: &str,
    body: PatientUpsert,
    today: chrono::NaiveDate,
) -> Result<Patient, ApiError> {
    Ok(Patient {
        id: field("id", PatientId::parse(raw_id))?,
        name: field("name", text::person_name("name", &body.name))?,
        sex: field("sex", Sex::parse(&body.sex))?,
        birth_date: field("birthDate", patient::birth_date(body.birth_date, today))?,
        is_insured: body.is_insured,
        phone: field("phone", text::phone(body.phone.as_deref()))?,
    })
}

pub async fn put_patient(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    PathParam(raw): PathParam,
    JsonBody(body): JsonBody<PatientUpsert>,
) -> Result<Json<ChangeAck>, ApiError> {
    let today = zone_of(&state, &clinic).await?.today();
    let patient = validate_patient(&raw, body, today)?;
    let (store, c) = (state.store.clone(), clinic.clone());
    let seq = blocking(move || store.upsert_patient(&c, &patient)).await?;
    state.changes.written(&clinic);
    Ok(Json(ChangeAck { seq }))
}

pub async fn delete_patient(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    PathParam(raw): PathParam,
) -> Result<Json<ChangeAck>, ApiError> {
    let id = PatientId::parse(&raw)?;
    let (store, c) = (state.store.clone(), clinic.clone());
    let seq = blocking(move || store.delete_patient(&c, &id)).await?;
    state.changes.written(&clinic);
    seq.map(|seq| Json(ChangeAck { seq }))
        .ok_or_else(|| ApiError::not_found("patient"))
}

/// The one rule set for an appointment's own fields: `PUT /v1/appointments/{id}` and
/// `import` both use it. (That its patient and doctor exist is checked against the store.)
pub fn validate_appointment(
    raw_id: &str,
    body: AppointmentUpsert,
) -> Result<Appointment, ApiError> {
    field(
        "endsAt",
        appointment::check_times(body.starts_at, body.ends_at),
    )?;
    Ok(Appointment {
        id: field("id", record_id(raw_id))?,
        doctor_id: field("doctorId", DoctorId::parse(&body.doctor_id))?,
        patient_id: field("patientId", PatientId::parse(&body.patient_id))?,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
        status: field("status", AppointmentStatus::parse(&body.status))?,
    })
}

pub async fn put_appointment(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    PathParam(raw): PathParam,
    JsonBody(body): JsonBody<AppointmentUpsert>,
) -> Result<Json<ChangeAck>, ApiError> {
    let appointment = validate_appointment(&raw, body)?;
    // A device stores an appointment only beside its patient and its doctor
    // (foreign keys), so the server takes one only when both are in this clinic.
    let store = state.store.clone();
    let (clinic_for_check, doctor, patient) = (
        clinic.clone(),
        appointment.doctor_id.clone(),
        appointment.patient_id.clone(),
    );
    let (patient_known, doctor_role) = blocking(move || {
        Ok((
            store.patient(&clinic_for_check, &patient)?.is_some(),
            store.staff_role(&clinic_for_check, doctor.as_str())?,
        ))
    })
    .await?;
    if !patient_known {
        return Err(ApiError::BadRequest(
            "patientId: no such patient in this clinic".into(),
        ));
    }
    if doctor_role != Some(StaffRole::Doctor) {
        return Err(ApiError::BadRequest(
            "doctorId: no such doctor in this clinic".into(),
        ));
    }
    let (store, c) = (state.store.clone(), clinic.clone());
    let seq = blocking(move || store.upsert_appointment(&c, &appointment)).await?;
    state.changes.written(&clinic);
    Ok(Json(ChangeAck { seq }))
}

pub async fn delete_appointment(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    PathParam(raw): PathParam,
) -> Result<Json<ChangeAck>, ApiError> {
    let id = field("id", record_id(&raw))?;
    let (store, c) = (state.store.clone(), clinic.clone());
    let seq = blocking(move || store.delete_appointment(&c, &id)).await?;
    state.changes.written(&clinic);
    seq.map(|seq| Json(ChangeAck { seq }))
        .ok_or_else(|| ApiError::not_found("appointment"))
}

/// The one rule set for a staff member (and the clinic's PIN policy,
/// `clinic_domain::pin::PinPolicy::Clinic`, its reason in English and Chinese):
/// `PUT /v1/staff/{id}` and `import` both use it.
pub fn validate_staff(raw_id: &str, body: &StaffUpsert) -> Result<StaffMember, ApiError> {
    if let Some(p) = &body.pin {
        pin::PinPolicy::Clinic
            .check(p)
            .map_err(|refusal| ApiError::BadRequest(format!("pin: {}", refusal.both())))?;
    }
    Ok(StaffMember {
        id: field("id", record_id(raw_id))?,
        name: field("name", text::person_name("name", &body.name))?,
        role: field("role", StaffRole::parse(&body.role))?,
        department: field(
            "department",
            text::label("department", &body.department, text::MAX_DEPARTMENT_CHARS),
        )?,
    })
}

pub async fn put_staff(
    State(state): State<AppState>,
    Clinic(clinic): Clinic,
    PathParam(raw): PathParam,
    JsonBody(body): JsonBody<StaffUpsert>,
) -> Result<Json<ChangeAck>, ApiError> {
    let member = validate_staff(&raw, &body)?;
    // argon2id takes 19 MiB per hash: at most `max_concurrent_pin_hashes` at once,
    // the rest wait here (holding nothing but their request).
    let verifier = match body.pin {
        Some(pin) => Some(
            state
                .pin_hasher
                .verifier(pin)
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
        None => None,
    };
    let store = state.store.clone();
    let active = body.active;
    let c = clinic.clone();
    let seq =
        blocking(move || store.upsert_staff(&c, &member, active, verifier.as_deref())).await?;
    state.changes.written(&clinic);
    Ok(Json(ChangeAck { seq }))
}

/// `POST /v1/enrol`: a one-time enrolment code for a new device token of the
/// clinic the code was made for. Unauthenticated, so every bound of an
/// unauthenticated request applies, and a refused code counts as a failed
/// authentication of the address (429 after too many).
pub async fn enrol(
    State(state): State<AppState>,
    Peer(peer): Peer,
    JsonBody(body): JsonBody<EnrolRequest>,
) -> Result<Json<EnrolResponse>, ApiError> {
    let clinic = field("clinicId", record_id(&body.clinic_id))?;
    let label = body
        .label
        .as_deref()
        .map(|l| field("label", text::label("label", l, MAX_TOKEN_LABEL_CHARS)))
        .transpose()?;
    let refused = |why: &str| {
        failed_from(peer, &state).unwrap_or_else(|| ApiError::EnrolmentRefused(why.to_owned()))
    };
    let Some(code) = auth::normalise_code(&body.code) else {
        return Err(refused(
            "this is not an enrolment code: it has 16 letters and digits, as printed by `clinic-central enrol-code`",
        ));
    };
    let (token, secret) = auth::new_token(&clinic, Scope::Device, label.as_deref())?;
    let token_id = token.id.clone();
    let store = state.store.clone();
    let now = chrono::Utc::now().timestamp();
    let redeemed =
        blocking(move || store.redeem_enrolment_code(&auth::code_hash(&code), now, &token)).await?;
    let why = match redeemed {
        Redeemed::Enrolled { label } => {
            tracing::info!(clinic = %clinic, token_id, label = label.as_deref().unwrap_or(""), "device enrolled");
            return Ok(Json(EnrolResponse {
                clinic_id: clinic,
                token_id,
                token: secret,
                scope: Scope::Device.as_str().to_owned(),
            }));
        }
        Redeemed::Unknown => "this enrolment code is not known: check it, or ask for a new one",
        Redeemed::Used => "this enrolment code was already used: ask for a new one",
        Redeemed::Expired => "this enrolment code has expired: ask for a new one",
        Redeemed::OtherClinic => "this enrolment code is for another clinic",
    };
    tracing::info!(clinic = %clinic, reason = why, "enrolment refused");
    Err(refused(why))
}

/// `DELETE /v1/tokens/self`: revokes the token the request carries (204). A device
/// whose set-up failed after its enrolment gives back the token it will not keep;
/// a token can reach no other token this way (revoking another is the operator's
/// `token revoke`).
pub async fn revoke_own_token(
    State(state): State<AppState>,
    Caller(token): Caller,
) -> Result<StatusCode, ApiError> {
    let store = state.store.clone();
    let id = token.token_id.clone();
    blocking(move || store.revoke_token(&id)).await?;
    tracing::info!(clinic = %token.clinic_id, token_id = %token.token_id, scope = token.scope.as_str(), "token revoked by its holder");
    Ok(StatusCode::NO_CONTENT)
}

/// 200 only when the report writer is running and the database answers.
pub async fn healthz(State(state): State<AppState>) -> Response {
    if !state.ingest.is_healthy() {
        return (StatusCode::SERVICE_UNAVAILABLE, "report writer unavailable").into_response();
    }
    let store = state.store.clone();
    match blocking(move || store.check()).await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
