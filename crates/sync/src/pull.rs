//! Pull: the clinic's patients, staff, appointments and pain reports, one cursor
//! per stream, each page applied with its cursor in one transaction (see
//! `clinic_store::pull`). Items are parsed one by one, so one this device cannot
//! read or store is set aside with its reason and the rest of the page and the
//! cursor move on. A server without feeds whose uploads are proven is
//! upload-only: nothing to pull. A server with the other feeds but without the
//! reports feed (an older clinic-central) is upload-only for reports alone.
//! An empty store is first loaded from the server's snapshot (`crate::bootstrap`).

use chrono::{NaiveDate, Utc};
use clinic_domain::assessment::REASON;
use clinic_domain::patient::MIN_BIRTH_DATE;
use clinic_domain::{
    Appointment, DoctorId, DomainError, PainScore, Patient, PatientId, StaffMember, StaffRole,
    record_id,
};
use clinic_protocol::{
    AppointmentRecord, FeedItem, PatientRecord, StaffRecord, StoredReport, paths,
};
use clinic_store::pull::{self, Applied, PulledItem, PulledReport, PulledStaff};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::context::Context;
use crate::{SyncError, Trace};

/// Rounds of patients → staff → appointments per run: an appointment may send us
/// back once for a patient or doctor created after we pulled those streams; in the
/// second round they are current, so one still unknown was deleted and is left out.
const REFERENCE_ROUNDS: usize = 2;

/// The seq and ID of an item, read even when the rest of it is unusable.
#[derive(Deserialize, Default)]
struct ItemKey {
    #[serde(default)]
    seq: i64,
    #[serde(default)]
    id: String,
}

/// serde's message without the values it quotes (`invalid type: string "…"`,
/// `integer \`…\``): the reason is kept and shown, and a value may be a name or a
/// phone number. Field and variant names (backticked words) stay: they say what
/// was wrong.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=start]);
        let after = &rest[start + 1..];
        let Some(len) = after.find(quote) else {
            out.push('…');
            return out;
        };
        let inner = &after[..len];
        let a_name = quote == '`' && inner.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
        out.push_str(if a_name { inner } else { "…" });
        out.push(quote);
        rest = &after[len + 1..];
    }
    out.push_str(rest);
    out
}

/// Reads one raw feed item into what the store applies: its change, or the
/// reason this device cannot use it (then it is set aside, never applied; an item
/// without a readable seq or ID is listed under seq 0 or an empty ID).
pub(crate) fn read_item<T: DeserializeOwned, U>(
    raw: &RawValue,
    convert: fn(&str, T) -> Result<U, String>,
) -> PulledItem<U> {
    let item: FeedItem<T> = match serde_json::from_str(raw.get()) {
        Ok(item) => item,
        Err(e) => {
            let key: ItemKey = serde_json::from_str(raw.get()).unwrap_or_default();
            return PulledItem::refused(
                key.seq,
                key.id,
                format!("unreadable record: {}", without_values(&e.to_string())),
            );
        }
    };
    let (seq, id) = (item.seq, item.id);
    if item.deleted {
        return PulledItem::delete(seq, id);
    }
    let Some(data) = item.data else {
        return PulledItem::refused(seq, id, "a record without data");
    };
    match convert(&id, data) {
        Ok(u) => PulledItem::upsert(seq, id, u),
        Err(reason) => PulledItem::refused(seq, id, reason),
    }
}

// The conversions use the domain's constructors, the same rules clinic-central
// checks with, so a record the server accepted is one this device can store; a
// record an older server let through is refused here and set aside.

/// A refusal as a set-aside reason: what was wrong, without the value where the
/// value is personal (a birth date).
fn refusal(e: DomainError) -> String {
    match e {
        DomainError::BirthDateInFuture(_) => "the birth date is in the future".to_owned(),
        DomainError::BirthDateTooEarly(_) => format!("the birth date is before {MIN_BIRTH_DATE}"),
        other => without_values(&other.to_string()),
    }
}

/// The latest date it is anywhere on Earth (UTC+14). The server judges "not in the
/// future" on its clinic's calendar, which is never ahead of this, so a birth the
/// server accepted this morning in Shanghai is never refused here as tomorrow's.
fn latest_today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(14)).date_naive()
}

pub(crate) fn patient(id: &str, r: PatientRecord) -> Result<Patient, String> {
    Patient::new(
        id,
        &r.name,
        &r.sex,
        r.birth_date,
        r.is_insured,
        r.phone.as_deref(),
        latest_today(),
    )
    .map_err(refusal)
}

pub(crate) fn staff(id: &str, r: StaffRecord) -> Result<PulledStaff, String> {
    let member = StaffMember::new(id, &r.name, &r.role, &r.department).map_err(refusal)?;
    if member.role == StaffRole::Doctor {
        DoctorId::parse(id).map_err(refusal)?;
    }
    Ok(PulledStaff {
        id: member.id,
        name: member.name,
        role: member.role,
        department: member.department,
        active: r.active,
        pin_verifier: r.pin_verifier,
    })
}

pub(crate) fn appointment(id: &str, r: AppointmentRecord) -> Result<Appointment, String> {
    Appointment::new(
        id,
        &r.doctor_id,
        &r.patient_id,
        r.starts_at,
        r.ends_at,
        &r.status,
    )
    .map_err(refusal)
}

/// Longest device ID kept from a received report (the server's own bound is
/// larger than any ID a Clinic Desk makes, a UUID).
const MAX_DEVICE_ID_CHARS: usize = 64;

/// A report of the feed, checked by the rules the device stores its own by: IDs
/// and score by the domain's parsers, free text by the rules for text another
/// system sent (`AssessmentDetails::received`, the reason's `TextRule`), a
/// resolution by `check_resolves`. What it refers to is the store's to check.
pub(crate) fn report(id: &str, r: StoredReport) -> Result<PulledReport, String> {
    let received_at = r.received_at;
    let s = r.submission;
    if !s.report_id.to_string().eq_ignore_ascii_case(id) {
        return Err("the item's ID is not its report's ID".into());
    }
    let time = |name: &str, secs: i64| {
        chrono::DateTime::from_timestamp(secs, 0).ok_or_else(|| format!("{name} is out of range"))
    };
    let recorded_at = time("submitTime", s.submit_time)?.timestamp();
    let assessed_at = time("assessedAt", s.assessed_at.unwrap_or(s.submit_time))?;
    let recorded_by = match s.recorded_by.as_deref() {
        Some(by) => record_id(by).map_err(|e| format!("recordedBy: {}", refusal(e)))?,
        None => String::new(),
    };
    let device_id = match s.device_id {
        Some(d) => {
            clinic_domain::text::check_text("deviceId", &d, MAX_DEVICE_ID_CHARS, false)
                .map_err(refusal)?;
            d
        }
        None => String::new(),
    };
    let mut resolves: Vec<String> = s.resolves.iter().map(|u| u.to_string()).collect();
    clinic_domain::assessment::check_resolves(&s.report_id, s.supersedes.as_ref(), &s.resolves)
        .map_err(refusal)?;
    resolves.sort();
    let supersedes = s.supersedes.map(|u| u.to_string());
    Ok(PulledReport {
        id: s.report_id.to_string(),
        patient_id: PatientId::parse(&s.patient_id).map_err(refusal)?,
        score: PainScore::new(s.scale, s.pain_score).map_err(refusal)?,
        assessed_at,
        recorded_at,
        recorded_by,
        device_id,
        // A reason belongs to a correction; without one there is nothing it explains.
        reason: match &supersedes {
            Some(_) => REASON.received(s.reason).map_err(refusal)?,
            None => None,
        },
        supersedes,
        details: s.details.received().map_err(refusal)?,
        follows_up: s.follows_up.map(|u| u.to_string()),
        resolves,
        received_at,
    })
}

/// What one pull did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pulled {
    pub applied: u64,
    pub set_aside: u64,
}

/// Pulls every stream to its end. Pages already applied stay applied if a later
/// one fails; the next run continues from the last committed cursor.
pub(crate) async fn run(ctx: &Context, trace: &Trace) -> Result<Pulled, SyncError> {
    // An empty store loads the server's snapshot first (when it has one), then
    // pulls from the snapshot's cursor what changed since.
    let mut total = crate::bootstrap::run(ctx, trace).await?.unwrap_or_default();
    for round in 0..REFERENCE_ROUNDS {
        let last_round = round + 1 == REFERENCE_ROUNDS;
        let patients = match pull_stream(
            ctx,
            pull::STREAM_PATIENTS,
            paths::FEED_PATIENTS,
            trace,
            patient,
            |c, p, n| pull::apply_patients(c, p, n).map(|set_aside| (Applied::All, set_aside, 0)),
        )
        .await
        {
            Err(SyncError::NotOffered { status }) if round == 0 => {
                return feeds_missing(ctx, status).await;
            }
            other => other?,
        };
        ctx.set_upload_only(false);
        let staff = pull_stream(
            ctx,
            pull::STREAM_STAFF,
            paths::FEED_STAFF,
            trace,
            staff,
            |c, p, n| pull::apply_staff(c, p, n).map(|set_aside| (Applied::All, set_aside, 0)),
        )
        .await?;
        let appointments = pull_stream(
            ctx,
            pull::STREAM_APPOINTMENTS,
            paths::FEED_APPOINTMENTS,
            trace,
            appointment,
            move |c, p, n| {
                pull::apply_appointments(c, p, n, last_round).map(|a| (a.applied, a.set_aside, 0))
            },
        )
        .await?;
        let reports = pull_reports(ctx, trace, last_round).await?;
        for (p, _) in [patients, staff, appointments, reports] {
            total.applied += p.applied;
            total.set_aside += p.set_aside;
        }
        if appointments.1 == Applied::All && reports.1 == Applied::All {
            return Ok(total);
        }
    }
    Err(SyncError::Protocol(
        "an appointment or report refers to a patient or doctor the server has not sent".into(),
    ))
}

/// The reports feed, after the other three (a report needs its patient). A server
/// that has the other feeds but not this one (404: a clinic-central from before
/// it) sends no reports: this device is upload-only for them, as for everything
/// with the hospital's original API. Counts only reports written here as applied,
/// so this device's own coming back change nothing on screen.
async fn pull_reports(
    ctx: &Context,
    trace: &Trace,
    last_round: bool,
) -> Result<(Pulled, Applied), SyncError> {
    let pulled = pull_stream(
        ctx,
        pull::STREAM_REPORTS,
        paths::FEED_REPORTS,
        trace,
        report,
        move |c, p, n| {
            pull::apply_reports(c, p, n, Utc::now(), last_round)
                .map(|a| (a.applied, a.set_aside, p.len() - a.stored - a.set_aside))
        },
    )
    .await;
    match pulled {
        Err(SyncError::NotOffered { status }) => {
            tracing::debug!(
                status,
                "the server has no reports feed: reports are upload-only"
            );
            Ok((Pulled::default(), Applied::All))
        }
        other => other,
    }
}

/// The feeds are missing. With uploads proven, this is the hospital's original
/// API (it takes reports and sends nothing): upload-only, not a failure.
/// Without that proof it may be any web server: a failure the status names.
async fn feeds_missing(ctx: &Context, status: u16) -> Result<Pulled, SyncError> {
    if ctx.uploads_proven().await? {
        if !ctx.upload_only() {
            tracing::info!(
                status,
                "the server has no feeds: upload-only (it does not send patients or schedules)"
            );
        }
        ctx.set_upload_only(true);
        Ok(Pulled::default())
    } else {
        Err(SyncError::FeedsMissing { status })
    }
}

/// A feed page fetched and read item by item, ready for the store.
struct Fetched<U> {
    after: i64,
    items: Vec<PulledItem<U>>,
    next_cursor: i64,
    has_more: bool,
}

/// Fetches the page after `after` and reads its items, on a task of its own, so the
/// next page travels and is parsed while this one is written (the store's write,
/// with its fsync, is most of a pull; the network and the parse overlap it).
fn fetch<T, U>(
    ctx: &Context,
    path: &'static str,
    after: i64,
    trace: &Trace,
    convert: fn(&str, T) -> Result<U, String>,
) -> tokio::task::JoinHandle<Result<Fetched<U>, SyncError>>
where
    T: DeserializeOwned + Send + 'static,
    U: Send + 'static,
{
    let (client, limit, trace) = (
        ctx.client.clone(),
        ctx.config.feed_page_limit,
        trace.clone(),
    );
    tokio::spawn(async move {
        let page = client.feed(path, after, limit, &trace).await?;
        Ok(Fetched {
            after,
            items: page
                .items
                .iter()
                .map(|raw| read_item(raw, convert))
                .collect(),
            next_cursor: page.next_cursor,
            has_more: page.has_more,
        })
    })
}

/// Aborts the fetch it holds when dropped: a page fetched ahead and not wanted
/// (the run failed, or the stream was rewound or stopped) is never waited for.
struct Ahead<U>(tokio::task::JoinHandle<Result<Fetched<U>, SyncError>>);

impl<U> Ahead<U> {
    async fn page(mut self) -> Result<Fetched<U>, SyncError> {
        (&mut self.0)
            .await
            .map_err(|e| SyncError::Internal(format!("feed task: {e}")))?
    }
}

impl<U> Drop for Ahead<U> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pulls one stream to its end, page by page, each page applied with its cursor in
/// one transaction. While a page is applied the next one (after that page's cursor)
/// is already being fetched; it is used only if the cursor the store committed is
/// the one it was fetched after, so what is applied is always the page after the
/// stored cursor, as without fetching ahead.
async fn pull_stream<T, U>(
    ctx: &Context,
    stream: &'static str,
    path: &'static str,
    trace: &Trace,
    convert: fn(&str, T) -> Result<U, String>,
    apply: impl Fn(
        &mut clinic_store::Connection,
        &[PulledItem<U>],
        i64,
    ) -> Result<(Applied, usize, usize), clinic_store::StoreError>
    + Send
    + Sync
    + Copy
    + 'static,
) -> Result<(Pulled, Applied), SyncError>
where
    T: DeserializeOwned + Send + 'static,
    U: Send + 'static,
{
    let mut done = Pulled::default();
    let cursor = move || ctx.store(move |db| db.read(|c| pull::cursor(c, stream)));
    let mut next_page = Ahead(fetch(ctx, path, cursor().await?, trace, convert));
    loop {
        let page = next_page.page().await?;
        let (after, next, has_more) = (page.after, page.next_cursor, page.has_more);
        let more = has_more && next > after;
        let ahead = more.then(|| Ahead(fetch(ctx, path, next, trace, convert)));
        let items = page.items;
        let n = items.len();
        let (outcome, set_aside, unchanged) = ctx
            .store(move |db| db.write(|c| apply(c, &items, next)))
            .await?;
        done.applied += n.saturating_sub(set_aside + unchanged) as u64;
        done.set_aside += set_aside as u64;
        match outcome {
            // A report that waited for another can be stored now: fetch it again.
            Applied::All | Applied::Rewound => {}
            Applied::StoppedAtUnknownReference => return Ok((done, outcome)),
        }
        let at = cursor().await?;
        next_page = match ahead {
            Some(ahead) if at == next => ahead,
            _ if outcome == Applied::All && !more => return Ok((done, Applied::All)),
            _ => Ahead(fetch(ctx, path, at, trace, convert)),
        };
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    #[rstest]
    #[case(
        r#"invalid type: string "13900001111", expected a boolean at line 1 column 9"#,
        r#"invalid type: string "…", expected a boolean at line 1 column 9"#
    )]
    #[case(
        "invalid type: integer `13900001111`, expected a string",
        "invalid type: integer `…`, expected a string"
    )]
    #[case("missing field `birthDate`", "missing field `birthDate`")]
    #[case(
        "unknown variant `robot`, expected one of `female`, `male`",
        "unknown variant `robot`, expected one of `female`, `male`"
    )]
    #[case(r#"unterminated "张三"#, r#"unterminated "…"#)]
    fn reasons_keep_field_names_but_not_values(#[case] message: &str, #[case] kept: &str) {
        assert_eq!(without_values(message), kept);
    }

    const R1: &str = "0190f7a4-1c2b-7d3e-8f00-000000000001";
    const R2: &str = "0190f7a4-1c2b-7d3e-8f00-000000000002";

    /// A reports feed item with `data` changed by `edit`.
    fn report_item(edit: impl FnOnce(&mut serde_json::Value)) -> PulledItem<PulledReport> {
        let mut data = serde_json::json!({
            "reportId": R1, "patientId": "P0000001", "painScore": 6, "submitTime": 1_764_300_000,
            "scale": "nrs", "recordedBy": "N001", "deviceId": "dev-a", "assessedAt": 1_764_299_000,
            "receivedAt": 1_764_300_002
        });
        edit(&mut data);
        let item = serde_json::json!({ "seq": 9, "id": R1, "data": data });
        read_item::<StoredReport, _>(&RawValue::from_string(item.to_string()).unwrap(), report)
    }

    #[test]
    fn a_good_report_is_read_with_who_where_and_when() {
        let item = report_item(|d| {
            d["supersedes"] = R2.into();
            d["reason"] = " typo ".into();
        });
        let r = match item.change {
            Ok(pull::Change::Upsert(r)) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (
                r.recorded_by.as_str(),
                r.device_id.as_str(),
                r.recorded_at,
                r.received_at
            ),
            ("N001", "dev-a", 1_764_300_000, 1_764_300_002)
        );
        assert_eq!(r.assessed_at.timestamp(), 1_764_299_000);
        assert_eq!(
            r.reason.as_deref(),
            Some(" typo "),
            "received text is kept exactly"
        );
        let bare = report_item(|d| {
            d.as_object_mut().unwrap().remove("assessedAt");
            d.as_object_mut().unwrap().remove("recordedBy");
            d["reason"] = "no correction".into();
        });
        let Ok(pull::Change::Upsert(bare)) = bare.change else {
            panic!("{bare:?}")
        };
        assert_eq!(
            (
                bare.assessed_at.timestamp(),
                bare.recorded_by.as_str(),
                bare.reason
            ),
            (1_764_300_000, "", None),
            "assessed when submitted; a reason without a correction explains nothing"
        );
    }

    /// Each invalid report is refused on its own, with a reason, before the store sees it.
    #[rstest]
    #[case::score_off_the_scale(|d: &mut serde_json::Value| d["painScore"] = 11.into(), "score")]
    #[case::odd_faces_score(|d: &mut serde_json::Value| { d["scale"] = "wong_baker_faces".into(); d["painScore"] = 3.into(); }, "score")]
    #[case::unknown_scale(|d: &mut serde_json::Value| d["scale"] = "vas".into(), "unreadable")]
    #[case::another_items_report(|d: &mut serde_json::Value| d["reportId"] = R2.into(), "ID")]
    #[case::bad_patient_id(|d: &mut serde_json::Value| d["patientId"] = "P 1".into(), "")]
    #[case::bad_recorder(|d: &mut serde_json::Value| d["recordedBy"] = "N001!".into(), "recordedBy")]
    #[case::invisible_device(|d: &mut serde_json::Value| d["deviceId"] = "dev\u{202E}a".into(), "deviceId")]
    #[case::time_out_of_range(|d: &mut serde_json::Value| d["submitTime"] = i64::MAX.into(), "submitTime")]
    #[case::resolves_without_correcting(|d: &mut serde_json::Value| d["resolves"] = serde_json::json!([R2]), "resolving")]
    #[case::resolves_what_it_supersedes(|d: &mut serde_json::Value| { d["supersedes"] = R2.into(); d["resolves"] = serde_json::json!([R2]); }, "resolving")]
    #[case::reason_with_a_control_character(|d: &mut serde_json::Value| { d["supersedes"] = R2.into(); d["reason"] = "a\u{1b}b".into(); }, "reason")]
    #[case::note_too_long(|d: &mut serde_json::Value| d["note"] = "痛".repeat(501).into(), "note")]
    fn an_invalid_report_is_refused_with_a_reason(
        #[case] edit: fn(&mut serde_json::Value),
        #[case] why: &str,
    ) {
        let item = report_item(edit);
        assert_eq!((item.seq, item.id.as_str()), (9, R1));
        let reason = item.change.unwrap_err();
        assert!(reason.contains(why), "{reason}");
    }

    #[test]
    fn a_malformed_item_is_refused_with_its_seq_and_id() {
        let raw = RawValue::from_string(
            r#"{"seq":7,"id":"P7","data":{"name":"\udc00","sex":"male","birthDate":"1990-01-01","isInsured":true}}"#.into(),
        )
        .unwrap();
        let item = read_item::<PatientRecord, _>(&raw, patient);
        assert_eq!((item.seq, item.id.as_str()), (7, "P7"));
        assert!(item.change.unwrap_err().starts_with("unreadable record"));
        let no_seq = read_item::<PatientRecord, _>(
            &RawValue::from_string(r#"{"id":"P8"}"#.into()).unwrap(),
            patient,
        );
        assert_eq!((no_seq.seq, no_seq.id.as_str()), (0, "P8"));
        let not_an_object =
            read_item::<PatientRecord, _>(&RawValue::from_string("5".into()).unwrap(), patient);
        assert!(not_an_object.change.is_err());
    }
}
