//! `GET /v1/snapshot`: the clinic's live records at one change number, streamed
//! as newline-delimited JSON (`clinic_protocol::SnapshotLine`), for a device that
//! starts empty.
//!
//! Consistent: the store reads the clinic's change counter and every record in
//! ONE read transaction (SQLite: one reader's WAL snapshot; PostgreSQL:
//! `REPEATABLE READ, READ ONLY`). A change number is taken from the counter row
//! inside its writing transaction, and a later commit always has a larger number
//! than any a reader could see, so the snapshot holds exactly the changes up to
//! its `begin` cursor and every later one comes through the feeds after it.
//!
//! Streamed and bounded: the store writes lines into a buffer that is handed to
//! the response in chunks of about [`limits::SNAPSHOT_CHUNK_BYTES`] through a
//! channel of [`limits::SNAPSHOT_CHUNKS_IN_FLIGHT`], so a snapshot of any size
//! holds a few hundred KiB here and waits while the device is slow to read (the
//! idle timeout closes a connection that stops reading). At most
//! [`Limits::max_snapshots`] run at once (503 with `Retry-After` beyond), each
//! for at most [`Limits::snapshot_max_duration`]: past it the body breaks off
//! without its `end` line, which the device reads as "not a snapshot".

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use clinic_protocol::{
    AppointmentRecord, FeedItem, PatientRecord, SNAPSHOT_CONTENT_TYPE, SnapshotCounts,
    SnapshotKind, SnapshotLine, StaffRecord, StoredReport,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Clinic;
use crate::limits::{self, Limits};
use crate::store::StoreError;

type Chunk = Result<Bytes, std::io::Error>;

/// One record of a snapshot as the store reads it.
pub enum SnapshotRecord {
    Staff(FeedItem<StaffRecord>),
    Patient(FeedItem<PatientRecord>),
    Appointment(FeedItem<AppointmentRecord>),
    Report(FeedItem<StoredReport>),
}

/// Where a store writes a snapshot: lines into a buffer, full chunks into the
/// response's channel. The SQLite store (on a blocking thread) sends with
/// [`SnapshotWriter::flush_blocking`], the PostgreSQL store (on its runtime) with
/// [`SnapshotWriter::flush`].
pub struct SnapshotWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
    rows: u64,
    deadline: Instant,
}

impl SnapshotWriter {
    fn new(tx: mpsc::Sender<Chunk>, limits: &Limits) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(limits::SNAPSHOT_CHUNK_BYTES + 4096),
            rows: 0,
            deadline: Instant::now() + limits.snapshot_max_duration,
        }
    }

    /// How long the snapshot may still take.
    pub fn time_left(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn line<I: Serialize>(&mut self, line: &SnapshotLine<I>) -> Result<(), StoreError> {
        serde_json::to_writer(&mut self.buf, line)
            .map_err(|e| StoreError::Corrupt(format!("snapshot line: {e}")))?;
        self.buf.push(b'\n');
        Ok(())
    }

    /// The first line; flush it at once so the answer's status leaves early.
    pub fn begin(&mut self, cursor: i64, counts: SnapshotCounts) -> Result<(), StoreError> {
        self.line(&SnapshotLine::<()>::begin(cursor, counts))
    }

    /// Writes one record; true when a chunk is full and should be flushed.
    pub fn record(&mut self, record: &SnapshotRecord) -> Result<bool, StoreError> {
        match record {
            SnapshotRecord::Staff(i) => self.line(&SnapshotLine::item(SnapshotKind::Staff, i))?,
            SnapshotRecord::Patient(i) => {
                self.line(&SnapshotLine::item(SnapshotKind::Patients, i))?
            }
            SnapshotRecord::Appointment(i) => {
                self.line(&SnapshotLine::item(SnapshotKind::Appointments, i))?
            }
            SnapshotRecord::Report(i) => {
                self.line(&SnapshotLine::item(SnapshotKind::Reports, i))?
            }
        }
        self.rows += 1;
        Ok(self.buf.len() >= limits::SNAPSHOT_CHUNK_BYTES)
    }

    /// The last line (after it the body is complete).
    pub fn end(&mut self) -> Result<(), StoreError> {
        self.line(&SnapshotLine::<()>::end(self.rows))
    }

    fn take(&mut self) -> Result<Option<Bytes>, StoreError> {
        if Instant::now() > self.deadline {
            return Err(StoreError::Unavailable(
                "the snapshot took longer than its limit".into(),
            ));
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let cap = self.buf.capacity();
        Ok(Some(Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(cap),
        ))))
    }

    fn gone() -> StoreError {
        StoreError::Unavailable("the client stopped reading the snapshot".into())
    }

    /// Hands the buffer to the response, waiting while the client is behind.
    pub fn flush_blocking(&mut self) -> Result<(), StoreError> {
        if let Some(chunk) = self.take()? {
            self.tx.blocking_send(Ok(chunk)).map_err(|_| Self::gone())?;
        }
        Ok(())
    }

    /// [`SnapshotWriter::flush_blocking`] for a store on an async runtime.
    pub async fn flush(&mut self) -> Result<(), StoreError> {
        if let Some(chunk) = self.take()? {
            self.tx.send(Ok(chunk)).await.map_err(|_| Self::gone())?;
        }
        Ok(())
    }
}

/// `GET /v1/snapshot`.
pub async fn snapshot(State(state): State<AppState>, Clinic(clinic): Clinic) -> Response {
    let Ok(slot) = state.snapshots.clone().try_acquire_owned() else {
        state.metrics.snapshots_refused.inc();
        let mut refused = ApiError::Unavailable.into_response();
        refused.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(limits::SNAPSHOT_FULL_RETRY_AFTER.as_secs()),
        );
        return refused;
    };
    let (tx, mut rx) = mpsc::channel::<Chunk>(limits::SNAPSHOT_CHUNKS_IN_FLIGHT);
    let writer = SnapshotWriter::new(tx.clone(), &state.limits);
    let store = state.store.clone();
    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        // The slot is held until the store has written the last line (or failed).
        let _slot = slot;
        match store.snapshot(&clinic, writer) {
            Ok(rows) => tracing::info!(
                rows,
                ms = started.elapsed().as_millis() as u64,
                "snapshot sent"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "snapshot broke off");
                // The body ends in an error: hyper aborts it without its last chunk.
                let _ = tx.blocking_send(Err(std::io::Error::other("snapshot failed")));
            }
        }
    });
    // The first chunk (the `begin` line) decides the status: a store that fails
    // before it answers with an error status, not a broken 200.
    let first = match rx.recv().await {
        Some(Ok(first)) => first,
        _ => return ApiError::Unavailable.into_response(),
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) });
    let mut response =
        Body::from_stream(futures_util::StreamExt::chain(body, rest)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SNAPSHOT_CONTENT_TYPE),
    );
    response
}
