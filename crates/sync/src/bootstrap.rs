//! Bootstrap: an empty store is loaded from the server's snapshot
//! (`GET /v1/snapshot`, newline-delimited `clinic_protocol::SnapshotLine`s taken
//! at one change number) instead of a thousand feed pages, then the feeds go on
//! from the snapshot's number (see `clinic_store::bootstrap` for the store's side
//! and what a kill leaves).
//!
//! The body is read chunk by chunk and each record is read and checked exactly as
//! a feed item is (`pull::read_item` with the same conversions: the domain's
//! constructors; one this device cannot use is set aside alone). Records go to
//! the store in batches of [`BATCH_ROWS`], one transaction each, written on a
//! blocking thread while the next batch is read: at most two batches are held.
//! Then the search keys are built, [`KEY_BATCH`] patients a transaction, and the
//! cursors stored. Progress (records, percent, time left) is in the status.
//!
//! A server without the route (the hospital's original API, an older
//! clinic-central: 404/405) is pulled page by page as before.

use std::time::{Duration, Instant};

use chrono::Utc;
use clinic_protocol::{SnapshotKind, SnapshotLine};
use clinic_store::bootstrap::{self, Phase};
use clinic_store::pull::PulledItem;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::context::Context;
use crate::pull::{self, Pulled};
use crate::status::{BootstrapPhase, BootstrapProgress};
use crate::{SyncError, Trace};

/// Records per load transaction: large enough that the commit's fsync is a
/// small part of it, small enough that one commit stays well within the server's
/// idle timeout for a connection it is waiting to write to.
pub(crate) const BATCH_ROWS: usize = 20_000;
/// Patients whose search keys are built per transaction.
pub(crate) const KEY_BATCH: usize = 25_000;

/// One batch of one stream, read and checked, for the store.
enum Batch {
    Staff(Vec<PulledItem<clinic_store::pull::PulledStaff>>),
    Patients(Vec<PulledItem<clinic_domain::Patient>>),
    Appointments(Vec<PulledItem<clinic_domain::Appointment>>),
    Reports(Vec<PulledItem<clinic_store::pull::PulledReport>>),
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Staff(v) => v.len(),
            Batch::Patients(v) => v.len(),
            Batch::Appointments(v) => v.len(),
            Batch::Reports(v) => v.len(),
        }
    }

    fn empty(kind: SnapshotKind) -> Option<Self> {
        Some(match kind {
            SnapshotKind::Staff => Batch::Staff(Vec::with_capacity(BATCH_ROWS)),
            SnapshotKind::Patients => Batch::Patients(Vec::with_capacity(BATCH_ROWS)),
            SnapshotKind::Appointments => Batch::Appointments(Vec::with_capacity(BATCH_ROWS)),
            SnapshotKind::Reports => Batch::Reports(Vec::with_capacity(BATCH_ROWS)),
            SnapshotKind::Begin | SnapshotKind::End => return None,
        })
    }

    fn kind(&self) -> SnapshotKind {
        match self {
            Batch::Staff(_) => SnapshotKind::Staff,
            Batch::Patients(_) => SnapshotKind::Patients,
            Batch::Appointments(_) => SnapshotKind::Appointments,
            Batch::Reports(_) => SnapshotKind::Reports,
        }
    }

    /// Reads `raw` as its stream's feed item, as a feed page's item is read.
    fn push(&mut self, raw: &RawValue) {
        match self {
            Batch::Staff(v) => v.push(pull::read_item(raw, pull::staff)),
            Batch::Patients(v) => v.push(pull::read_item(raw, pull::patient)),
            Batch::Appointments(v) => v.push(pull::read_item(raw, pull::appointment)),
            Batch::Reports(v) => v.push(pull::read_item(raw, pull::report)),
        }
    }
}

/// The progress shown while loading or indexing, with a time left from the rate so far.
fn progress(phase: BootstrapPhase, done: u64, total: u64, since: Instant) -> BootstrapProgress {
    let elapsed = since.elapsed().as_secs_f64();
    let seconds_left = (done > 0 && elapsed > 0.5).then(|| {
        let rate = done as f64 / elapsed;
        (total.saturating_sub(done) as f64 / rate).ceil() as u64
    });
    BootstrapProgress {
        phase,
        done,
        total,
        seconds_left,
    }
}

/// Whether a device that has pulled before is better served by a new snapshot
/// than by the feeds: `waiting` changes on the server past its oldest cursor,
/// `rows_here` the records it holds. A snapshot loads about ten times as many
/// records a second as the feeds apply changes (on the 2-core build machine,
/// 1,000,000 patients: 25.6 s from the snapshot against 286.5 s page by page,
/// `benches/bootstrap.rs`), so it pays once the changes outnumber a tenth of
/// the rows; a quarter leaves a margin, because the load hides name search
/// until the keys are rebuilt. Below `min_changes` (about 15 s of paging at
/// that rate) the feeds always do. A snapshot that breaks off leaves the store
/// as a new device's (lookup by ID, the progress shown) until a sync finishes it.
pub(crate) fn far_behind(waiting: i64, rows_here: u64, min_changes: u64) -> bool {
    let waiting = waiting.max(0) as u64;
    waiting >= min_changes && waiting > rows_here / 4
}

/// Asks the server's change counter (`GET /v1/changes` without waiting) when
/// it is time to ([`Context::far_behind_probe_due`]) and says whether this
/// store, which has pulled before, is [`far_behind`]. A server without the
/// route, or any failure here, leaves the device to the feeds, whose own
/// requests then say what is wrong.
async fn is_far_behind(ctx: &Context, trace: &Trace) -> Result<bool, SyncError> {
    if !ctx.far_behind_probe_due() {
        return Ok(false);
    }
    // Asked or not, not again for a while: a server without the route (the
    // hospital's original API) is not asked at every sync.
    ctx.far_behind_probed();
    let (oldest, rows_here) = ctx.store(|db| db.read(bootstrap::position)).await?;
    let answer = ctx
        .client
        .changes(oldest, Duration::ZERO, ctx.config.request_timeout, trace)
        .await;
    let head = match answer {
        Ok(changes) => changes.change_seq,
        Err(e) => {
            tracing::debug!(error = %e, "could not learn how far behind the store is");
            return Ok(false);
        }
    };
    let far = far_behind(head - oldest, rows_here, ctx.config.far_behind_min_changes);
    if far {
        tracing::info!(
            waiting = head - oldest,
            rows_here,
            "far behind the server: loading a new snapshot over the store"
        );
    }
    Ok(far)
}

/// Bootstraps the store when it needs it: an empty store, one whose bootstrap
/// was cut short, or one [`far_behind`] the server. `Ok(None)`: nothing to do
/// here (or the server has no snapshot route): pull page by page. `Ok(Some(_))`:
/// the store is loaded and its cursors stored.
pub(crate) async fn run(ctx: &Context, trace: &Trace) -> Result<Option<Pulled>, SyncError> {
    if !ctx.config.bootstrap || ctx.snapshot_missing() {
        return Ok(None);
    }
    let server = ctx.config.server_url.clone();
    let (needed, current) = ctx
        .store(|db| db.read(|c| Ok((bootstrap::needed(c)?, bootstrap::current(c)?))))
        .await?;
    if !needed && !is_far_behind(ctx, trace).await? {
        return Ok(None);
    }
    let result = match current {
        Some(b) if b.phase == Phase::Keys && b.server == server => {
            tracing::info!("resuming a bootstrap: building search keys");
            keys_and_finish(ctx).await.map(|()| Some(Pulled::default()))
        }
        _ => load(ctx, trace, &server).await,
    };
    // After a failure the progress stays shown: the store is still not loaded,
    // and the next run goes on.
    if result.is_ok() {
        ctx.status.send_modify(|s| s.bootstrap = None);
    }
    result
}

/// Fetches the snapshot and loads it, then builds the keys and stores the cursors.
async fn load(ctx: &Context, trace: &Trace, server: &str) -> Result<Option<Pulled>, SyncError> {
    let resp = match ctx
        .client
        .snapshot(ctx.config.snapshot_timeout, trace)
        .await
    {
        Err(SyncError::NotOffered { status }) => {
            tracing::info!(
                status,
                "the server has no snapshot: pulling the feeds page by page"
            );
            ctx.set_snapshot_missing();
            return Ok(None);
        }
        other => other?,
    };
    let mut body = Body {
        resp,
        stall: ctx.config.request_timeout,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
    let started = Instant::now();
    // The first line: the snapshot's change number and how many records follow.
    let (cursor, counts) = loop {
        if let Some(at) = buf.iter().position(|&b| b == b'\n') {
            let line: SnapshotLine<&RawValue> = serde_json::from_slice(&buf[..at])
                .map_err(|e| SyncError::UnexpectedAnswer(format!("not a snapshot: {e}")))?;
            let (SnapshotKind::Begin, Some(cursor), Some(counts)) =
                (line.kind, line.cursor, line.counts)
            else {
                return Err(SyncError::UnexpectedAnswer(
                    "a snapshot that does not begin with its cursor".into(),
                ));
            };
            buf.drain(..=at);
            break (cursor, counts);
        }
        if !body.read_into(&mut buf).await? {
            // A body that ends before its first line is no snapshot: nothing at
            // all, or one line of something else (a portal's page, a JSON error).
            return Err(if buf.iter().all(u8::is_ascii_whitespace) {
                SyncError::UnexpectedAnswer("an empty answer to the snapshot".into())
            } else {
                SyncError::UnexpectedAnswer("not a snapshot: no line ends".into())
            });
        }
        if buf.len() > 1 << 20 {
            return Err(SyncError::UnexpectedAnswer("not a snapshot".into()));
        }
    };
    let total = counts.total();
    {
        let server = server.to_owned();
        let now = Utc::now().timestamp();
        ctx.store(move |db| db.write(|c| bootstrap::begin(c, &server, cursor, total, now)))
            .await?;
    }
    tracing::info!(
        cursor,
        records = total,
        "bootstrapping from the server's snapshot"
    );
    ctx.status
        .send_modify(|s| s.bootstrap = Some(progress(BootstrapPhase::Loading, 0, total, started)));

    // Reading and writing overlap: batches go to the store through a channel of
    // one, so at most the batch being written and the one being read are held.
    let (tx, mut rx) = mpsc::channel::<Batch>(1);
    let reader = async move {
        let mut batch: Option<Batch> = None;
        let mut rows: u64 = 0;
        let mut ended = None;
        'read: loop {
            let mut start = 0;
            while let Some(len) = buf[start..].iter().position(|&b| b == b'\n') {
                let line = &buf[start..start + len];
                start += len + 1;
                if ended.is_some() {
                    return Err(SyncError::UnexpectedAnswer(
                        "data after the snapshot's end".into(),
                    ));
                }
                let line: SnapshotLine<&RawValue> = serde_json::from_slice(line)
                    .map_err(|e| SyncError::UnexpectedAnswer(format!("a snapshot line: {e}")))?;
                match (line.kind, line.item) {
                    (SnapshotKind::End, _) => ended = Some(line.rows.unwrap_or(u64::MAX)),
                    (SnapshotKind::Begin, _) | (_, None) => {
                        return Err(SyncError::UnexpectedAnswer(
                            "a snapshot line out of place".into(),
                        ));
                    }
                    (kind, Some(raw)) => {
                        if batch.as_ref().is_some_and(|b| b.kind() != kind) {
                            let full = batch.take().expect("checked");
                            tx.send(full).await.map_err(|_| stopped())?;
                        }
                        let b = batch
                            .get_or_insert_with(|| Batch::empty(kind).expect("a record's kind"));
                        b.push(raw);
                        rows += 1;
                        if b.len() >= BATCH_ROWS {
                            let full = batch.take().expect("just filled");
                            tx.send(full).await.map_err(|_| stopped())?;
                        }
                    }
                }
            }
            buf.drain(..start);
            if !body.read_into(&mut buf).await? {
                break 'read;
            }
        }
        if !buf.is_empty() || ended != Some(rows) || rows != total {
            return Err(SyncError::Protocol(format!(
                "the snapshot broke off or does not add up ({rows} of {total} records, end {ended:?})"
            )));
        }
        if let Some(last) = batch.take() {
            tx.send(last).await.map_err(|_| stopped())?;
        }
        Ok::<u64, SyncError>(rows)
    };
    let writer = async {
        let mut done: u64 = 0;
        let mut set_aside: u64 = 0;
        while let Some(batch) = rx.recv().await {
            let n = batch.len() as u64;
            let refused = ctx
                .store(move |db| {
                    db.write(|c| match &batch {
                        Batch::Staff(b) => bootstrap::load_staff(c, b),
                        Batch::Patients(b) => bootstrap::load_patients(c, b),
                        Batch::Appointments(b) => bootstrap::load_appointments(c, b),
                        Batch::Reports(b) => {
                            bootstrap::load_reports(c, b, Utc::now()).map(|(_, aside)| aside)
                        }
                    })
                })
                .await?;
            done += n;
            set_aside += refused as u64;
            ctx.status.send_modify(|s| {
                s.bootstrap = Some(progress(BootstrapPhase::Loading, done, total, started));
            });
        }
        Ok::<(u64, u64), SyncError>((done, set_aside))
    };
    let (read, written) = tokio::join!(reader, writer);
    let (done, set_aside) = written?;
    read?;
    ctx.store(|db| db.write(bootstrap::rows_loaded)).await?;
    tracing::info!(
        records = done,
        set_aside,
        ms = started.elapsed().as_millis() as u64,
        "snapshot loaded"
    );
    keys_and_finish(ctx).await?;
    Ok(Some(Pulled {
        applied: done - set_aside,
        set_aside,
    }))
}

/// The snapshot's body as it arrives.
struct Body {
    resp: reqwest::Response,
    /// Longest wait for the next chunk.
    stall: Duration,
}

impl Body {
    /// Appends the next chunk to `buf`; false at the end of the body.
    async fn read_into(&mut self, buf: &mut Vec<u8>) -> Result<bool, SyncError> {
        match tokio::time::timeout(self.stall, self.resp.chunk()).await {
            Err(_) => Err(SyncError::Protocol(
                "the snapshot stalled: no data within the request timeout".into(),
            )),
            Ok(Err(e)) => Err(SyncError::from_reqwest(e)),
            Ok(Ok(Some(chunk))) => {
                buf.extend_from_slice(&chunk);
                Ok(true)
            }
            Ok(Ok(None)) => Ok(false),
        }
    }
}

fn stopped() -> SyncError {
    SyncError::Internal("the bootstrap's writer stopped".into())
}

/// Builds the search keys of every patient, then stores the cursors (and ends
/// the bootstrap) in one transaction.
async fn keys_and_finish(ctx: &Context) -> Result<(), SyncError> {
    let started = Instant::now();
    let total = ctx
        .store(|db| db.read(|c| clinic_store::patients::count(c).map(|n| n.max(0) as u64)))
        .await?;
    let mut done: u64 = 0;
    loop {
        ctx.status.send_modify(|s| {
            s.bootstrap = Some(progress(BootstrapPhase::Indexing, done, total, started));
        });
        let n = ctx
            .store(|db| db.write(|c| bootstrap::build_keys(c, KEY_BATCH)))
            .await?;
        if n == 0 {
            break;
        }
        done += n as u64;
    }
    let cursor = ctx.store(|db| db.write(bootstrap::finish)).await?;
    tracing::info!(
        cursor,
        ms = started.elapsed().as_millis() as u64,
        "search keys built; bootstrap complete"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::far_behind;

    #[rstest]
    #[case::up_to_date(0, 1_000_000, false)]
    #[case::a_day_of_a_big_clinic(40_000, 1_000_000, false)]
    #[case::a_quarter_of_a_big_clinic(250_000, 1_000_000, false)]
    #[case::past_a_quarter(250_001, 1_000_000, true)]
    #[case::a_small_clinic_rebuilt(60_000, 20_000, true)]
    #[case::below_the_floor_however_small(49_999, 100, false)]
    #[case::at_the_floor(50_000, 100, true)]
    #[case::a_cursor_ahead_of_the_server(-5, 0, false)]
    fn a_snapshot_pays_past_a_quarter_of_the_rows_and_the_floor(
        #[case] waiting: i64,
        #[case] rows_here: u64,
        #[case] far: bool,
    ) {
        assert_eq!(far_behind(waiting, rows_here, 50_000), far);
    }
}
