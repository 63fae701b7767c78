//! Bulk data in: the installer's first load from the hospital's own system.
//!
//! - CSV (UTF-8, a header row, one record per line; a UTF-8 byte-order mark is
//!   skipped) of patients, appointments or staff. Columns by header name, any order:
//!   - patients: `id,name,sex,birth_date,is_insured[,phone]`
//!   - appointments: `id,doctor_id,patient_id,starts_at,ends_at,status` (RFC 3339 times)
//!   - staff: `id,name,role,department,pin[,active]` (the PIN is hashed here; only
//!     its verifier is stored)
//! - A FHIR R4 `Bundle` (JSON) of `Patient` resources: `identifier[0].value`, `name`
//!   (`text`, else family and given names), `gender`, `birthDate`, the first `phone`
//!   in `telecom`. FHIR has no insurance flag, so imported patients are not insured.
//!
//! Every row is validated with the same functions the HTTP upserts use
//! ([`crate::api::validate_patient`] and friends), so the server never holds what a
//! device could not. One file is all or nothing: if any row is refused, the report
//! lists every refused row with its line (or FHIR entry) and reason, and nothing is
//! stored. Otherwise all rows go in ONE transaction and each takes a change number,
//! so devices pull them through the feeds like any other change.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use clinic_domain::{ClinicZone, StaffMember, pin};
use clinic_protocol::{AppointmentRecord, PatientRecord, StaffUpsert};
use serde_json::Value;

use crate::api::{validate_appointment, validate_patient, validate_staff};
use crate::store::{CentralStore, ImportRows, StaffImport, StoreError};

/// Longest line read: a real row is well under 1 KiB. Longer lines are refused
/// without being held in memory.
pub const MAX_LINE: usize = 64 * 1024;
/// Largest FHIR bundle read into memory.
pub const MAX_FHIR_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    Patients,
    Appointments,
    Staff,
    /// A FHIR R4 Bundle of Patient resources.
    FhirPatients,
}

impl ImportKind {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "patients" => Some(Self::Patients),
            "appointments" => Some(Self::Appointments),
            "staff" => Some(Self::Staff),
            "fhir" | "fhir-patients" => Some(Self::FhirPatients),
            _ => None,
        }
    }

    /// From a file name: `*.json` is FHIR; otherwise the name starts with the kind.
    pub fn from_file_name(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".json") {
            return Some(Self::FhirPatients);
        }
        ["patients", "appointments", "staff"]
            .into_iter()
            .find(|k| name.starts_with(k))
            .and_then(Self::parse)
    }
}

/// One refused row: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 1-based line of the file (CSV), or 0-based `entry` index (FHIR).
    pub line: u64,
    pub fhir_entry: bool,
    pub reason: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = if self.fhir_entry { "entry" } else { "line" };
        write!(f, "{place} {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{} row(s) refused; nothing was stored", .0.len())]
    Refused(Vec<Refused>),
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refuse(line: u64, reason: impl Into<String>) -> Refused {
    Refused {
        line,
        fhir_entry: false,
        reason: reason.into(),
    }
}

/// Reads one line (without its `\n` / `\r\n`) into `buf`, keeping at most `MAX_LINE`
/// bytes. Returns `None` at end of file, else whether the line was too long.
fn read_line_bounded(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut seen = 0usize;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        seen += take;
        reader.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
        seen -= 1;
    }
    Ok(Some(seen > MAX_LINE))
}

/// Splits one CSV line into fields (RFC 4180 quoting within the line).
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => Ok(record.iter().map(str::to_owned).collect()),
        Some(Err(e)) => Err(format!("not valid CSV: {e}")),
        None => Ok(Vec::new()),
    }
}

/// The columns of a header row, by name.
struct Header {
    columns: HashMap<String, usize>,
    width: usize,
}

impl Header {
    fn parse(fields: &[String], required: &[&str], optional: &[&str]) -> Result<Self, String> {
        let mut columns = HashMap::new();
        for (i, name) in fields.iter().enumerate() {
            let name = name.trim().to_ascii_lowercase();
            if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
                return Err(format!("unknown column '{name}'"));
            }
            if columns.insert(name.clone(), i).is_some() {
                return Err(format!("column '{name}' appears twice"));
            }
        }
        if let Some(missing) = required.iter().find(|c| !columns.contains_key(**c)) {
            return Err(format!("missing column '{missing}'"));
        }
        Ok(Self {
            columns,
            width: fields.len(),
        })
    }

    fn get<'a>(&self, fields: &'a [String], name: &str) -> Option<&'a str> {
        self.columns.get(name).map(|&i| fields[i].as_str())
    }

    fn req<'a>(&self, fields: &'a [String], name: &str) -> &'a str {
        self.get(fields, name).unwrap_or_default()
    }
}

fn parse_bool(field: &str, raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{field} must be true or false")),
    }
}

fn parse_date(field: &str, raw: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{field} must be a date YYYY-MM-DD"))
}

fn parse_instant(field: &str, raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{field} must be an RFC 3339 time"))
}

fn non_empty(raw: &str) -> Option<String> {
    let t = raw.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

/// Validates a whole CSV file: every row checked, every refusal collected.
pub fn read_csv(
    kind: ImportKind,
    input: impl Read,
    today: NaiveDate,
) -> Result<ImportRows, ImportError> {
    let (required, optional): (&[&str], &[&str]) = match kind {
        ImportKind::Patients => (
            &["id", "name", "sex", "birth_date", "is_insured"],
            &["phone"],
        ),
        ImportKind::Appointments => (
            &[
                "id",
                "doctor_id",
                "patient_id",
                "starts_at",
                "ends_at",
                "status",
            ],
            &[],
        ),
        ImportKind::Staff => (&["id", "name", "role", "department", "pin"], &["active"]),
        ImportKind::FhirPatients => return read_fhir(input, today),
    };
    let mut reader = BufReader::with_capacity(256 * 1024, input);
    let mut buf = Vec::new();
    let mut refused = Vec::new();
    let mut header: Option<Header> = None;
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    let mut patients = Vec::new();
    let mut appointments = Vec::new();
    let mut staff: Vec<(StaffUpsert, StaffMember)> = Vec::new();
    let mut line_no = 0u64;
    while let Some(too_long) = read_line_bounded(&mut reader, &mut buf)? {
        line_no += 1;
        if too_long {
            refused.push(refuse(
                line_no,
                format!("line longer than {MAX_LINE} bytes"),
            ));
            continue;
        }
        let mut bytes = buf.as_slice();
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let Ok(line) = std::str::from_utf8(bytes) else {
            refused.push(refuse(line_no, "not valid UTF-8"));
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let fields = match split_fields(line) {
            Ok(f) => f,
            Err(e) => {
                refused.push(refuse(line_no, e));
                continue;
            }
        };
        let Some(h) = &header else {
            match Header::parse(&fields, required, optional) {
                Ok(h) => header = Some(h),
                // Without a header no row can be read: report it alone.
                Err(e) => {
                    return Err(ImportError::Refused(vec![refuse(
                        line_no,
                        format!("header: {e}"),
                    )]));
                }
            }
            continue;
        };
        if fields.len() != h.width {
            refused.push(refuse(
                line_no,
                format!("{} columns, the header has {}", fields.len(), h.width),
            ));
            continue;
        }
        let id = h.req(&fields, "id").trim();
        let checked: Result<(), String> = (|| {
            match kind {
                ImportKind::Patients => {
                    let body = PatientRecord {
                        name: h.req(&fields, "name").to_owned(),
                        sex: h.req(&fields, "sex").trim().to_owned(),
                        birth_date: parse_date("birth_date", h.req(&fields, "birth_date"))?,
                        is_insured: parse_bool("is_insured", h.req(&fields, "is_insured"))?,
                        phone: h.get(&fields, "phone").and_then(non_empty),
                    };
                    patients.push(validate_patient(id, body, today).map_err(|e| e.to_string())?);
                }
                ImportKind::Appointments => {
                    let body = AppointmentRecord {
                        doctor_id: h.req(&fields, "doctor_id").to_owned(),
                        patient_id: h.req(&fields, "patient_id").to_owned(),
                        starts_at: parse_instant("starts_at", h.req(&fields, "starts_at"))?,
                        ends_at: parse_instant("ends_at", h.req(&fields, "ends_at"))?,
                        status: h.req(&fields, "status").trim().to_owned(),
                    };
                    appointments.push(validate_appointment(id, body).map_err(|e| e.to_string())?);
                }
                ImportKind::Staff => {
                    let body = StaffUpsert {
                        name: h.req(&fields, "name").to_owned(),
                        role: h.req(&fields, "role").trim().to_owned(),
                        department: h.req(&fields, "department").to_owned(),
                        active: match h.get(&fields, "active").and_then(non_empty) {
                            Some(a) => parse_bool("active", &a)?,
                            None => true,
                        },
                        pin: Some(h.req(&fields, "pin").trim().to_owned()),
                    };
                    let member = validate_staff(id, &body).map_err(|e| e.to_string())?;
                    staff.push((body, member));
                }
                ImportKind::FhirPatients => unreachable!("handled above"),
            }
            Ok(())
        })();
        match checked {
            Err(reason) => refused.push(refuse(line_no, reason)),
            Ok(()) => {
                if let Some(first) = first_line_of.insert(id.to_owned(), line_no) {
                    refused.push(refuse(line_no, format!("ID '{id}' also on line {first}")));
                }
            }
        }
    }
    if header.is_none() {
        refused.push(refuse(line_no.max(1), "no header row"));
    }
    if !refused.is_empty() {
        return Err(ImportError::Refused(refused));
    }
    Ok(match kind {
        ImportKind::Patients => ImportRows::Patients(patients),
        ImportKind::Appointments => ImportRows::Appointments(appointments),
        ImportKind::Staff => ImportRows::Staff(hash_staff_pins(staff)?),
        ImportKind::FhirPatients => unreachable!("handled above"),
    })
}

/// Each row's PIN hashed under the clinic's policy (the rows were validated by
/// `validate_staff`, so every PIN passes it; hashing checks it again). A hash
/// takes ≥ 250 ms, so the rows are shared among the machine's cores, each thread
/// with one reused work area.
fn hash_staff_pins(
    staff: Vec<(StaffUpsert, StaffMember)>,
) -> Result<Vec<StaffImport>, ImportError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = staff.len().div_ceil(threads).max(1);
    let hashed: Vec<Result<Vec<String>, pin::PinError>> = std::thread::scope(|s| {
        let workers: Vec<_> = staff
            .chunks(per_thread)
            .map(|chunk| {
                s.spawn(move || {
                    let mut memory = pin::HashMemory::new();
                    chunk
                        .iter()
                        .map(|(body, _)| {
                            pin::verifier_in(
                                body.pin.as_deref().unwrap_or_default(),
                                pin::PinPolicy::Clinic,
                                &mut memory,
                            )
                        })
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a PIN hashing thread panicked"))
            .collect()
    });
    let mut verifiers = Vec::with_capacity(staff.len());
    for chunk in hashed {
        verifiers.extend(chunk.map_err(|e| ImportError::Io(std::io::Error::other(e.to_string())))?);
    }
    Ok(staff
        .into_iter()
        .zip(verifiers)
        .map(|((body, member), pin_verifier)| StaffImport {
            member,
            active: body.active,
            pin_verifier,
        })
        .collect())
}

/// A FHIR `HumanName`: its `text`, else family and given names (family first and
/// unspaced when the family name is not Latin script, as Chinese names are written).
fn fhir_name(names: Option<&Value>) -> String {
    let Some(name) = names.and_then(|n| n.get(0)) else {
        return String::new();
    };
    if let Some(text) = name.get("text").and_then(Value::as_str) {
        return text.to_owned();
    }
    let family = name
        .get("family")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let given: Vec<&str> = name
        .get("given")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if family.is_ascii() {
        let mut parts = given;
        parts.push(family);
        parts.join(" ")
    } else {
        format!("{family}{}", given.concat())
    }
}

fn fhir_patient(entry: &Value) -> Result<(String, PatientRecord), String> {
    let resource = entry.get("resource").ok_or("entry has no resource")?;
    if resource.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        return Err("resource is not a Patient".into());
    }
    let id = resource
        .get("identifier")
        .and_then(Value::as_array)
        .and_then(|ids| {
            ids.iter()
                .find_map(|i| i.get("value").and_then(Value::as_str))
        })
        .ok_or("Patient has no identifier value")?;
    let birth = resource
        .get("birthDate")
        .and_then(Value::as_str)
        .ok_or("Patient has no birthDate")?;
    let phone = resource
        .get("telecom")
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .find(|c| c.get("system").and_then(Value::as_str) == Some("phone"))
        })
        .and_then(|c| c.get("value").and_then(Value::as_str))
        .and_then(non_empty);
    let record = PatientRecord {
        name: fhir_name(resource.get("name")),
        sex: resource
            .get("gender")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned(),
        birth_date: parse_date("birthDate", birth)?,
        is_insured: false,
        phone,
    };
    Ok((id.to_owned(), record))
}

fn read_fhir(input: impl Read, today: NaiveDate) -> Result<ImportRows, ImportError> {
    let mut bytes = Vec::new();
    input.take(MAX_FHIR_BYTES + 1).read_to_end(&mut bytes)?;
    let whole = |reason: String| {
        ImportError::Refused(vec![Refused {
            line: 0,
            fhir_entry: false,
            reason,
        }])
    };
    if bytes.len() as u64 > MAX_FHIR_BYTES {
        return Err(whole(format!("file larger than {MAX_FHIR_BYTES} bytes")));
    }
    let bundle: Value =
        serde_json::from_slice(&bytes).map_err(|e| whole(format!("not a JSON document: {e}")))?;
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(whole("not a FHIR Bundle".into()));
    }
    let entries = bundle
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut refused = Vec::new();
    let mut patients = Vec::with_capacity(entries.len());
    let mut first_entry_of: HashMap<String, u64> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let i = i as u64;
        let result = fhir_patient(entry).and_then(|(id, record)| {
            validate_patient(&id, record, today).map_err(|e| e.to_string())
        });
        match result {
            Ok(p) => {
                if let Some(first) = first_entry_of.insert(p.id.as_str().to_owned(), i) {
                    refused.push(Refused {
                        line: i,
                        fhir_entry: true,
                        reason: format!("ID '{}' also in entry {first}", p.id.as_str()),
                    });
                } else {
                    patients.push(p);
                }
            }
            Err(reason) => refused.push(Refused {
                line: i,
                fhir_entry: true,
                reason,
            }),
        }
    }
    if !refused.is_empty() {
        return Err(ImportError::Refused(refused));
    }
    Ok(ImportRows::Patients(patients))
}

/// Validates `path` and stores it for `clinic_id` (created with the default zone if
/// new): all rows or, when any is refused, none. Returns the rows stored.
pub fn import_file(
    store: &dyn CentralStore,
    clinic_id: &str,
    kind: ImportKind,
    path: &Path,
) -> Result<u64, ImportError> {
    store.ensure_clinic(clinic_id, ClinicZone::default())?;
    let today = store.clinic_zone(clinic_id)?.unwrap_or_default().today();
    let rows = read_csv(kind, std::fs::File::open(path)?, today)?;
    Ok(store.import(clinic_id, rows)?)
}
