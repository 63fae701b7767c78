//! The sync loop's decisions, apart from its I/O: an event goes in (a command, a
//! run's outcome, a timer, a probe's answer), the next action comes out (run now,
//! run after a delay, probe, wait, stop for credentials, shut down). No I/O and no
//! clock reads here: the loop in `executor.rs` passes the time in with every event
//! and does what it is told, so every rule below is tested as a table.
//!
//! The rules: one run at a time; anything asked for during a run becomes exactly
//! one more run after it (coalesced, never lost); a failure backs off (capped,
//! jittered, `Retry-After` as a floor up to the cap), and the ticker and saved
//! reports then wait for its deadline; while offline, a probe that reaches the server
//! ends the backoff; refused credentials stop sync until a person asks ("Sync
//! now"), which overrides the backoff too; an upload-only server is a success.
//!
//! The long poll (`GET /v1/changes`, [`Planner::watch`]): while the last run
//! synced (the server answers and sync is not stopped) and the server offers the
//! route, one is kept in flight, beside runs too; an answer with a larger counter
//! ("the server changed") asks for a run like a saved report does, so one during a
//! run becomes one more run after it. A 404/405 means the server has none (the
//! hospital's original API): no more long polls until the next start, the ticker
//! carries on. Other failures back off on their own backoff (the run's base and
//! cap, `Retry-After` as a floor); refused credentials stop sync as a run's would.

use std::time::Duration;

use tokio::time::Instant;

use crate::Backoff;
use crate::backoff::deadline;

/// How a long poll ended, as far as the loop cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watched {
    /// The clinic's counter is past what this device holds: pull.
    Changed,
    /// The wait ended with nothing new.
    Quiet,
    /// The server has no long poll (404/405): the ticker only, until the next start.
    NotOffered,
    /// The server refused the clinic's credentials.
    CredentialsRefused,
    /// No usable answer (connection, timeout, 5xx, 503 at the server's waiter cap).
    Failed { retry_after: Option<Duration> },
}

/// How a run ended, as far as the loop cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Pushed and pulled.
    Synced,
    /// Pushed to a server that has no feeds but proved it stores reports (the
    /// hospital's original API): nothing to pull, and that is no failure.
    UploadOnly,
    /// The server refused the clinic's credentials: retrying would only lock
    /// the clinic out faster.
    CredentialsRefused,
    /// Any other failure. `offline`: no answer came at all, so the probe may end
    /// the backoff early; `retry_after`: the server's own delay, if it gave one.
    Failed {
        retry_after: Option<Duration>,
        offline: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The loop started.
    Started,
    /// A person asked ("Sync now"): ignores the backoff and a credentials stop.
    SyncNow,
    /// A report was saved.
    ReportQueued,
    /// The app asked the loop to stop (or dropped every handle).
    Shutdown,
    /// The run in flight ended.
    Finished(Outcome),
    /// The ticker fired (a sync at least every `interval`).
    Tick,
    /// The backoff deadline of `Action::RunAt` was reached.
    RetryDue,
    /// The probe timer of `Action::RunAt { probe: true, .. }` fired.
    ProbeDue,
    /// The probe's answer.
    Probed { reachable: bool },
    /// The long poll in flight ended.
    Watched(Watched),
    /// The long poll's backoff deadline ([`Watch::At`]) was reached.
    WatchDue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start a run now.
    Run,
    /// A run is in flight: let it finish (what arrived changes only what follows it).
    KeepRunning,
    /// Ask the server whether it is back, and report `Probed`.
    Probe,
    /// Nothing to do: wait for a command or the ticker.
    Idle,
    /// Backing off: run at `at` (report `RetryDue`) unless a command or the ticker
    /// is allowed sooner; with `probe`, the offline probe timer runs meanwhile
    /// (report `ProbeDue`).
    RunAt { at: Instant, probe: bool },
    /// The credentials were refused: only "Sync now" starts a run (the ticker and
    /// saved reports do not).
    StoppedForAuth,
    /// Stop the loop; a run in flight is abandoned (its reports stay `sending`
    /// and are sent again under the same IDs at the next start).
    Shutdown,
}

/// Whether a long poll should be in flight, beside the [`Action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watch {
    /// Keep one in flight: start one if none is.
    Keep,
    /// Start the next one at this time (report `WatchDue`).
    At(Instant),
    /// None: abandon one in flight.
    Off,
}

pub(crate) struct Planner {
    backoff: Backoff,
    /// The jitter's source; a seeded one makes the planner deterministic in tests.
    rng: fastrand::Rng,
    /// A run is wanted: asked for by a command, the ticker, the deadline or the probe.
    want: bool,
    /// The wanted run was asked for by a person: it ignores the backoff and a
    /// credentials stop.
    forced: bool,
    running: bool,
    /// When the backoff lets the next run start; `None`: at once.
    retry_at: Option<Instant>,
    stopped_for_auth: bool,
    /// The last run failed without any answer from the server.
    offline: bool,
    shut_down: bool,
    /// Long polls are wanted at all (the config; pulling is on).
    live: bool,
    /// The server has not answered a long poll 404/405 since the start.
    watch_offered: bool,
    /// The last run synced: the server answers and sync is not stopped.
    synced: bool,
    watch_backoff: Backoff,
    /// When the long poll's backoff lets the next one start.
    watch_retry_at: Option<Instant>,
}

impl Planner {
    /// `live`: keep a long poll in flight while online (else the ticker alone).
    pub(crate) fn new(backoff: Backoff, rng: fastrand::Rng, live: bool) -> Self {
        Self {
            watch_backoff: backoff.clone(),
            live,
            watch_offered: true,
            synced: false,
            watch_retry_at: None,
            backoff,
            rng,
            want: false,
            forced: false,
            running: false,
            retry_at: None,
            stopped_for_auth: false,
            offline: false,
            shut_down: false,
        }
    }

    /// The backoff deadline, if one is set (for the loop's log line).
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Takes in what happened at `now` and says what to do next.
    pub(crate) fn on(&mut self, event: Event, now: Instant) -> Action {
        match event {
            Event::Shutdown => self.shut_down = true,
            Event::Started | Event::ReportQueued => self.want = true,
            Event::SyncNow => {
                self.want = true;
                self.forced = true;
            }
            Event::Finished(outcome) if self.running => self.finished(outcome, now),
            // Timers and probes belong to the waits; none is armed during a run.
            Event::Tick | Event::RetryDue if !self.running => self.want = true,
            Event::ProbeDue if self.probing() => return Action::Probe,
            Event::Probed { reachable: true } if self.probing() => {
                self.retry_at = None;
                self.want = true;
            }
            Event::Watched(watched) => self.watched(watched, now),
            Event::WatchDue => {
                if self.watch_retry_at.is_some_and(|at| now >= at) {
                    self.watch_retry_at = None;
                }
            }
            Event::Finished(_)
            | Event::Tick
            | Event::RetryDue
            | Event::ProbeDue
            | Event::Probed { .. } => {}
        }
        self.next(now)
    }

    /// Whether a long poll should be in flight now (asked after every event).
    pub(crate) fn watch(&self, now: Instant) -> Watch {
        if !self.live
            || !self.watch_offered
            || !self.synced
            || self.stopped_for_auth
            || self.shut_down
        {
            return Watch::Off;
        }
        match self.watch_retry_at {
            Some(at) if at > now => Watch::At(at),
            _ => Watch::Keep,
        }
    }

    fn watched(&mut self, watched: Watched, now: Instant) {
        match watched {
            Watched::Changed => {
                self.want = true;
                self.watch_backoff.reset();
            }
            Watched::Quiet => self.watch_backoff.reset(),
            Watched::NotOffered => self.watch_offered = false,
            Watched::CredentialsRefused => {
                // No long poll until a run is accepted again; a run in flight decides
                // for itself (its own answer says whether the token is refused).
                self.synced = false;
                if !self.running {
                    self.stopped_for_auth = true;
                    self.retry_at = None;
                }
            }
            Watched::Failed { retry_after } => {
                let delay = self.watch_backoff.next_delay(retry_after, &mut self.rng);
                self.watch_retry_at = Some(deadline(now, delay));
            }
        }
    }

    fn finished(&mut self, outcome: Outcome, now: Instant) {
        self.running = false;
        match outcome {
            Outcome::Synced | Outcome::UploadOnly => {
                self.synced = true;
                self.backoff.reset();
                self.retry_at = None;
                self.stopped_for_auth = false;
                self.offline = false;
            }
            Outcome::CredentialsRefused => {
                self.synced = false;
                self.stopped_for_auth = true;
                self.retry_at = None;
                self.offline = false;
            }
            Outcome::Failed {
                retry_after,
                offline,
            } => {
                let delay = self.backoff.next_delay(retry_after, &mut self.rng);
                self.retry_at = Some(deadline(now, delay));
                self.offline = offline;
                self.synced = false;
            }
        }
    }

    /// Whether a probe may end the wait: offline, backing off, not stopped.
    fn probing(&self) -> bool {
        !self.running
            && !self.shut_down
            && self.offline
            && self.retry_at.is_some()
            && !self.stopped_for_auth
    }

    fn next(&mut self, now: Instant) -> Action {
        if self.shut_down {
            return Action::Shutdown;
        }
        if self.running {
            return Action::KeepRunning;
        }
        let due = self.retry_at.is_none_or(|at| now >= at);
        if self.want && (self.forced || (due && !self.stopped_for_auth)) {
            if self.forced {
                // A person asked: the run goes ahead as if the stop had been lifted,
                // so a failure of another kind backs off and retries as usual.
                self.stopped_for_auth = false;
            }
            self.want = false;
            self.forced = false;
            self.running = true;
            return Action::Run;
        }
        if self.stopped_for_auth {
            return Action::StoppedForAuth;
        }
        match self.retry_at {
            Some(at) => Action::RunAt {
                at,
                probe: self.offline,
            },
            None => Action::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ops::RangeInclusive;

    use rstest::rstest;

    use super::*;

    const BASE: Duration = Duration::from_secs(1);
    const CAP: Duration = Duration::from_secs(300);
    const DAY: Duration = Duration::from_secs(86_400);

    /// The action expected, with a backoff deadline as the milliseconds from the
    /// step's time it may fall within (the jitter is random, seeded).
    #[derive(Debug, Clone)]
    enum Expect {
        Run,
        KeepRunning,
        Probe,
        Idle,
        RunAt(RangeInclusive<u64>, bool),
        StoppedForAuth,
        Shutdown,
    }

    impl Expect {
        fn matches(&self, action: Action, now: Instant) -> bool {
            match (self, action) {
                (Expect::RunAt(in_ms, probe), Action::RunAt { at, probe: p }) => {
                    let ms = at.saturating_duration_since(now).as_millis() as u64;
                    *probe == p && in_ms.contains(&ms) && at >= now
                }
                (Expect::Run, Action::Run)
                | (Expect::KeepRunning, Action::KeepRunning)
                | (Expect::Probe, Action::Probe)
                | (Expect::Idle, Action::Idle)
                | (Expect::StoppedForAuth, Action::StoppedForAuth)
                | (Expect::Shutdown, Action::Shutdown) => true,
                _ => false,
            }
        }
    }

    use Event::*;
    use Expect as E;

    fn failed(retry_after: Option<Duration>, offline: bool) -> Event {
        Finished(Outcome::Failed {
            retry_after,
            offline,
        })
    }

    const SYNCED: Event = Finished(Outcome::Synced);
    const UPLOAD_ONLY: Event = Finished(Outcome::UploadOnly);
    const REFUSED: Event = Finished(Outcome::CredentialsRefused);
    const CAP_MS: u64 = CAP.as_millis() as u64;

    /// Each step: let this many milliseconds pass, then this event, then this action.
    type Step = (u64, Event, Expect);

    #[rstest]
    #[case::the_loop_starts_with_a_run_and_then_rests(vec![
        (0, Started, E::Run),
        (40, SYNCED, E::Idle),
    ])]
    #[case::the_ticker_firing_while_idle_runs(vec![
        (0, Started, E::Run),
        (40, SYNCED, E::Idle),
        (60_000, Tick, E::Run),
        (40, SYNCED, E::Idle),
        (60_000, Tick, E::Run),
    ])]
    #[case::requests_during_a_run_are_coalesced_into_exactly_one_more(vec![
        (0, Started, E::Run),
        (10, SyncNow, E::KeepRunning),
        (0, ReportQueued, E::KeepRunning),
        (5, SyncNow, E::KeepRunning),
        (5, ReportQueued, E::KeepRunning),
        (280, SYNCED, E::Run),
        (300, SYNCED, E::Idle),
    ])]
    #[case::a_report_saved_during_a_run_waits_for_the_runs_backoff(vec![
        (0, Started, E::Run),
        (10, ReportQueued, E::KeepRunning),
        (100, failed(None, false), E::RunAt(0..=1_000, false)),
        (1_000, RetryDue, E::Run),
    ])]
    #[case::sync_now_during_a_failing_run_goes_ahead_of_the_backoff(vec![
        (0, Started, E::Run),
        (10, SyncNow, E::KeepRunning),
        (100, failed(Some(Duration::from_secs(60)), false), E::Run),
    ])]
    #[case::the_ticker_and_saved_reports_wait_out_the_backoff(vec![
        (0, Started, E::Run),
        (100, failed(Some(Duration::from_secs(120)), false), E::RunAt(120_000..=120_000, false)),
        (60_000, Tick, E::RunAt(60_000..=60_000, false)),
        (0, ReportQueued, E::RunAt(60_000..=60_000, false)),
        (60_000, RetryDue, E::Run),
        (100, SYNCED, E::Idle),
    ])]
    #[case::shutdown_during_backoff_stops_at_once(vec![
        (0, Started, E::Run),
        (100, failed(None, true), E::RunAt(0..=1_000, true)),
        (500, Shutdown, E::Shutdown),
        (60_000, Tick, E::Shutdown),
        (0, SyncNow, E::Shutdown),
    ])]
    #[case::shutdown_during_a_run_abandons_it(vec![
        (0, Started, E::Run),
        (10, Shutdown, E::Shutdown),
        (100, SYNCED, E::Shutdown),
    ])]
    #[case::a_retry_after_longer_than_the_cap_is_clamped_to_it(vec![
        (0, Started, E::Run),
        (100, failed(Some(DAY), false), E::RunAt(CAP_MS..=CAP_MS, false)),
        (CAP_MS, RetryDue, E::Run),
        (100, failed(Some(Duration::MAX), false), E::RunAt(CAP_MS..=CAP_MS, false)),
    ])]
    #[case::refused_credentials_stop_until_sync_now(vec![
        (0, Started, E::Run),
        (10, ReportQueued, E::KeepRunning),
        (100, REFUSED, E::StoppedForAuth),
        (60_000, Tick, E::StoppedForAuth),
        (0, ReportQueued, E::StoppedForAuth),
        (0, RetryDue, E::StoppedForAuth),
        (0, ProbeDue, E::StoppedForAuth),
        (0, SyncNow, E::Run),
        // The new token is accepted: sync is back to normal, the ticker included.
        (100, SYNCED, E::Idle),
        (60_000, Tick, E::Run),
    ])]
    #[case::refused_again_after_sync_now_stops_again(vec![
        (0, Started, E::Run),
        (100, REFUSED, E::StoppedForAuth),
        (1_000, SyncNow, E::Run),
        (100, REFUSED, E::StoppedForAuth),
        (60_000, Tick, E::StoppedForAuth),
    ])]
    #[case::sync_now_during_a_refused_run_tries_once_more_and_then_backs_off_as_usual(vec![
        (0, Started, E::Run),
        (10, SyncNow, E::KeepRunning),
        (100, REFUSED, E::Run),
        (100, failed(None, true), E::RunAt(0..=1_000, true)),
        (1_000, RetryDue, E::Run),
    ])]
    #[case::an_offline_probe_that_reaches_the_server_ends_the_backoff(vec![
        (0, Started, E::Run),
        (100, failed(Some(DAY), true), E::RunAt(CAP_MS..=CAP_MS, true)),
        (10_000, ProbeDue, E::Probe),
        (50, Probed { reachable: false }, E::RunAt(CAP_MS - 10_050..=CAP_MS - 10_050, true)),
        (10_000, ProbeDue, E::Probe),
        (50, Probed { reachable: true }, E::Run),
        (100, SYNCED, E::Idle),
    ])]
    #[case::no_probe_when_the_server_answered(vec![
        (0, Started, E::Run),
        (100, failed(Some(Duration::from_secs(60)), false), E::RunAt(60_000..=60_000, false)),
        (10_000, ProbeDue, E::RunAt(50_000..=50_000, false)),
        (0, Probed { reachable: true }, E::RunAt(50_000..=50_000, false)),
    ])]
    #[case::an_upload_only_run_is_a_success_not_an_error(vec![
        (0, Started, E::Run),
        (100, failed(None, false), E::RunAt(0..=1_000, false)),
        (1_000, RetryDue, E::Run),
        (100, failed(None, false), E::RunAt(0..=2_000, false)),
        (2_000, RetryDue, E::Run),
        (100, UPLOAD_ONLY, E::Idle),
        // No backoff left: a saved report goes at once, and the next failure
        // starts the backoff from its base again.
        (10, ReportQueued, E::Run),
        (100, failed(None, false), E::RunAt(0..=1_000, false)),
    ])]
    #[case::timers_firing_during_a_run_change_nothing(vec![
        (0, Started, E::Run),
        (10, Tick, E::KeepRunning),
        (0, RetryDue, E::KeepRunning),
        (0, ProbeDue, E::KeepRunning),
        (0, Probed { reachable: true }, E::KeepRunning),
        (100, SYNCED, E::Idle),
    ])]
    #[tokio::test(start_paused = true)]
    async fn the_planner_decides(#[case] steps: Vec<Step>) {
        let mut planner = Planner::new(Backoff::new(BASE, CAP), fastrand::Rng::with_seed(7), true);
        for (i, (advance_ms, event, expect)) in steps.into_iter().enumerate() {
            tokio::time::advance(Duration::from_millis(advance_ms)).await;
            let now = Instant::now();
            let action = planner.on(event, now);
            assert!(
                expect.matches(action, now),
                "step {i}: {event:?} gave {action:?}, expected {expect:?}"
            );
        }
    }

    /// The long poll expected beside the action.
    #[derive(Debug, Clone)]
    enum W {
        Keep,
        Off,
        /// Its backoff deadline, in milliseconds from the step's time.
        At(RangeInclusive<u64>),
    }

    impl W {
        fn matches(&self, watch: Watch, now: Instant) -> bool {
            match (self, watch) {
                (W::Keep, Watch::Keep) | (W::Off, Watch::Off) => true,
                (W::At(in_ms), Watch::At(at)) => {
                    in_ms.contains(&(at.saturating_duration_since(now).as_millis() as u64))
                }
                _ => false,
            }
        }
    }

    fn watched_failed(retry_after: Option<Duration>) -> Event {
        Watched(super::Watched::Failed { retry_after })
    }

    const CHANGED: Event = Watched(super::Watched::Changed);
    const QUIET: Event = Watched(super::Watched::Quiet);
    const NOT_OFFERED: Event = Watched(super::Watched::NotOffered);
    const WATCH_REFUSED: Event = Watched(super::Watched::CredentialsRefused);

    #[rstest]
    #[case::the_long_poll_starts_once_a_run_synced_and_a_change_runs_at_once(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (5_000, CHANGED, E::Run, W::Keep),
        (40, SYNCED, E::Idle, W::Keep),
        (25_000, QUIET, E::Idle, W::Keep),
    ])]
    #[case::changes_during_a_run_become_exactly_one_more_run(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (10, CHANGED, E::Run, W::Keep),
        (10, CHANGED, E::KeepRunning, W::Keep),
        (0, CHANGED, E::KeepRunning, W::Keep),
        (0, ReportQueued, E::KeepRunning, W::Keep),
        (30, SYNCED, E::Run, W::Keep),
        (30, SYNCED, E::Idle, W::Keep),
    ])]
    #[case::a_server_without_the_route_keeps_the_ticker_and_is_not_asked_again(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (5, NOT_OFFERED, E::Idle, W::Off),
        (60_000, Tick, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Off),
        (60_000, Tick, E::Run, W::Off),
    ])]
    #[case::the_hospitals_upload_only_server_is_asked_once(vec![
        (0, Started, E::Run, W::Off),
        (40, UPLOAD_ONLY, E::Idle, W::Keep),
        (5, NOT_OFFERED, E::Idle, W::Off),
        (60_000, Tick, E::Run, W::Off),
    ])]
    #[case::long_poll_failures_back_off_and_an_answer_resets_the_backoff(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (10, watched_failed(None), E::Idle, W::At(0..=1_000)),
        (1_000, WatchDue, E::Idle, W::Keep),
        (10, watched_failed(None), E::Idle, W::At(0..=2_000)),
        (2_000, WatchDue, E::Idle, W::Keep),
        // The waiter cap's 503 asks for 30 s: a floor, as for runs.
        (10, watched_failed(Some(Duration::from_secs(30))), E::Idle, W::At(30_000..=30_000)),
        (10_000, Tick, E::Run, W::At(20_000..=20_000)),
        (40, SYNCED, E::Idle, W::At(19_960..=19_960)),
        (19_960, WatchDue, E::Idle, W::Keep),
        (25_000, QUIET, E::Idle, W::Keep),
        (10, watched_failed(None), E::Idle, W::At(0..=1_000)),
    ])]
    #[case::a_day_long_retry_after_on_the_long_poll_is_clamped_to_the_cap(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (10, watched_failed(Some(DAY)), E::Idle, W::At(CAP_MS..=CAP_MS)),
    ])]
    #[case::a_failed_run_stops_the_long_poll_until_a_run_syncs_again(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (60_000, Tick, E::Run, W::Keep),
        (100, failed(None, true), E::RunAt(0..=1_000, true), W::Off),
        (1_000, RetryDue, E::Run, W::Off),
        (100, SYNCED, E::Idle, W::Keep),
    ])]
    #[case::refused_credentials_on_the_long_poll_stop_sync_until_sync_now(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (10, WATCH_REFUSED, E::StoppedForAuth, W::Off),
        (60_000, Tick, E::StoppedForAuth, W::Off),
        (0, ReportQueued, E::StoppedForAuth, W::Off),
        (0, SyncNow, E::Run, W::Off),
        (100, SYNCED, E::Idle, W::Keep),
    ])]
    #[case::refused_on_the_long_poll_during_a_run_lets_the_run_decide(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (10, Tick, E::Run, W::Keep),
        (10, WATCH_REFUSED, E::KeepRunning, W::Off),
        (100, REFUSED, E::StoppedForAuth, W::Off),
    ])]
    #[case::shutdown_ends_the_long_poll(vec![
        (0, Started, E::Run, W::Off),
        (40, SYNCED, E::Idle, W::Keep),
        (10, Shutdown, E::Shutdown, W::Off),
    ])]
    #[tokio::test(start_paused = true)]
    async fn the_planner_decides_the_long_poll(#[case] steps: Vec<(u64, Event, Expect, W)>) {
        let mut planner = Planner::new(Backoff::new(BASE, CAP), fastrand::Rng::with_seed(7), true);
        for (i, (advance_ms, event, expect, watch)) in steps.into_iter().enumerate() {
            tokio::time::advance(Duration::from_millis(advance_ms)).await;
            let now = Instant::now();
            let action = planner.on(event, now);
            let w = planner.watch(now);
            assert!(
                expect.matches(action, now) && watch.matches(w, now),
                "step {i}: {event:?} gave {action:?} and {w:?}, expected {expect:?} and {watch:?}"
            );
        }
    }

    #[test]
    fn without_long_polls_only_the_ticker_and_commands_run() {
        let now = Instant::now();
        let mut planner = Planner::new(Backoff::new(BASE, CAP), fastrand::Rng::with_seed(7), false);
        assert_eq!(planner.on(Started, now), Action::Run);
        assert_eq!(planner.on(SYNCED, now), Action::Idle);
        assert_eq!(planner.watch(now), Watch::Off);
    }

    #[test]
    fn the_same_seed_gives_the_same_deadlines() {
        let now = Instant::now();
        let deadlines = |seed| {
            let mut planner = Planner::new(
                Backoff::new(BASE, CAP),
                fastrand::Rng::with_seed(seed),
                true,
            );
            planner.on(Started, now);
            (0..8)
                .map(|_| {
                    let action = planner.on(failed(None, false), now);
                    planner.on(SyncNow, now);
                    action
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(deadlines(3), deadlines(3));
        assert_ne!(deadlines(3), deadlines(4), "the jitter is random");
    }
}
