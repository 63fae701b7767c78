//! Pain assessments as FHIR R4 Observations, for the hospital's EMR or a trial's EDC.
//!
//! The resource ID is the report's ID, so importing the same export twice updates
//! rather than duplicates. A corrected record is exported too, as
//! `entered-in-error`, and its correction (`corrected`) points back at it: the
//! receiver sees the same history the nurse does.
//!
//! Concurrent corrections (ARCHITECTURE.md, "Concurrent corrections") come out as
//! the rule decides them, the same on every device: a report that is no longer live
//! (superseded, or named in a resolution) is `entered-in-error`; every live report
//! of a conflicting record keeps its status (`corrected`) — no correction is
//! hidden — and carries the `conflicting-corrections` extension, which says whether
//! it is the shown current value and references the one that is, plus a note
//! saying the same in words. A resolution's `replaces` extension names the report it
//! supersedes and each one it resolves.

use chrono::{DateTime, Utc};
use clinic_domain::{ClinicZone, PainScale};
use clinic_store::StoreError;
use clinic_store::outbox::ReportEntry;
use serde_json::{Value, json};

use crate::dto::instant;

pub const LOINC: &str = "http://loinc.org";
/// Pain severity - 0-10 verbal numeric rating [Score] - Reported.
pub const LOINC_NRS: &str = "72514-3";
/// Pain severity Wong-Baker FACES pain rating scale.
pub const LOINC_FACES: &str = "38221-8";
const EXTENSION_BASE: &str = "urn:clinic-desk:fhir:StructureDefinition";

fn local(t: DateTime<Utc>, zone: ClinicZone) -> Value {
    Value::String(t.with_timezone(&zone.tz()).to_rfc3339())
}

/// One Observation. `performer_name` is the recorder's name when this device knows
/// it. A stored time out of range fails the export rather than leaving the time out.
pub fn observation(
    e: &ReportEntry,
    performer_name: Option<&str>,
    zone: ClinicZone,
) -> Result<Value, StoreError> {
    let (code, display) = match e.scale {
        PainScale::Nrs => (
            LOINC_NRS,
            "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
        ),
        PainScale::WongBakerFaces => (
            LOINC_FACES,
            "Pain severity Wong-Baker FACES pain rating scale",
        ),
    };
    let status = if e.superseded_by.is_some() {
        // Superseded or resolved: no longer live.
        "entered-in-error"
    } else if e.supersedes.is_some() {
        "corrected"
    } else {
        "final"
    };
    let mut performer = json!({ "reference": format!("Practitioner/{}", e.recorded_by) });
    if let Some(name) = performer_name {
        performer["display"] = json!(name);
    }
    let mut o = json!({
        "resourceType": "Observation",
        "id": e.id,
        "identifier": [{ "system": "urn:clinic-desk:pain-report", "value": e.id }],
        "status": status,
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey", "display": "Survey" }] }],
        "code": { "coding": [{ "system": LOINC, "code": code, "display": display }] },
        "subject": { "reference": format!("Patient/{}", e.patient_id) },
        "effectiveDateTime": local(instant(e.assessed_at)?, zone),
        "issued": local(instant(e.recorded_at)?, zone),
        "performer": [performer],
        "valueInteger": e.score,
        "device": { "display": format!("Clinic Desk {}", e.device_id) },
    });
    let mut notes = Vec::new();
    if let Some(note) = &e.details.note {
        notes.push(json!({ "text": note }));
    }
    if let Some(intervention) = &e.details.intervention {
        notes.push(json!({ "text": format!("Intervention: {intervention}") }));
    }
    if let (Some(old), Some(reason)) = (&e.supersedes, &e.correction_reason) {
        notes.push(json!({ "text": format!("Corrects Observation/{old}: {reason}") }));
    }
    // The live reports of a conflicting record: all kept, one shown as current.
    let conflict = e
        .standing
        .as_ref()
        .filter(|s| s.conflicting && s.live)
        .map(|s| (s.current, s.record_live[0].clone()));
    if let Some((_, current)) = &conflict {
        notes.push(json!({ "text": format!(
            "Conflicting corrections of Observation/{}: shown current is Observation/{current}",
            e.standing.as_ref().map(|s| s.record.as_str()).unwrap_or_default()
        ) }));
    }
    if !notes.is_empty() {
        o["note"] = Value::Array(notes);
    }
    if let Some(site) = &e.details.body_site {
        o["bodySite"] = json!({ "text": site });
    }
    let mut extensions = Vec::new();
    if let Some(activity) = e.details.activity {
        extensions.push(
            json!({ "url": format!("{EXTENSION_BASE}/pain-activity"), "valueCode": activity.as_str() }),
        );
    }
    for old in e.supersedes.iter().chain(&e.resolves) {
        extensions.push(json!({ "url": format!("{EXTENSION_BASE}/replaces"),
                                "valueReference": { "reference": format!("Observation/{old}") } }));
    }
    if let Some((shown, current)) = conflict {
        extensions.push(json!({ "url": format!("{EXTENSION_BASE}/conflicting-corrections"),
            "extension": [
                { "url": "shownCurrent", "valueBoolean": shown },
                { "url": "current", "valueReference": { "reference": format!("Observation/{current}") } },
            ] }));
    }
    if let Some(first) = &e.follows_up {
        extensions.push(json!({ "url": format!("{EXTENSION_BASE}/reassessment-of"),
                                "valueReference": { "reference": format!("Observation/{first}") } }));
    }
    if !extensions.is_empty() {
        o["extension"] = Value::Array(extensions);
    }
    Ok(o)
}

/// A `collection` Bundle of the given Observations.
pub fn bundle(observations: Vec<Value>, at: DateTime<Utc>, zone: ClinicZone) -> Value {
    let entries: Vec<Value> = observations
        .into_iter()
        .map(|o| json!({ "fullUrl": format!("urn:uuid:{}", o["id"].as_str().unwrap_or_default()), "resource": o }))
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": local(at, zone),
        "entry": entries,
    })
}
