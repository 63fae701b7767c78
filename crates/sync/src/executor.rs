//! The sync loop's I/O: one `tokio::select!` over the command channel, the run in
//! flight, the long poll in flight, the ticker, the backoff deadlines and the
//! offline probe's timer. Every
//! event goes to the planner (`planner.rs`), which says what to do next; this loop
//! only does it. One sync at a time: the loop is the only runner, so there is no
//! lock to leak.

use std::future::Future;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::Fuse;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::planner::{Action, Event, Outcome, Planner, Watch, Watched};

pub(crate) enum Command {
    SyncNow,
    ReportQueued,
    Shutdown,
}

/// The I/O the loop is asked to do. `SyncEngine` does the real thing.
pub(crate) trait Work: Send + Sync + 'static {
    /// One sync run.
    fn sync(&self) -> impl Future<Output = Outcome> + Send;
    /// Whether the server answers again.
    fn probe(&self) -> impl Future<Output = bool> + Send;
    /// A report was saved: show the new counts.
    fn report_queued(&self) -> impl Future<Output = ()> + Send;
    /// The loop stopped with a run in flight: the status must not say "running".
    fn abandoned(&self);
    /// One long poll: wait until the server's clinic changes past what this device
    /// holds (or the wait ends). Dropped unfinished when the loop no longer wants it.
    fn watch(&self) -> impl Future<Output = Watched> + Send;
}

/// How often the loop's timers fire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timers {
    /// The ticker: a sync at least this often.
    pub(crate) interval: Duration,
    /// While offline and backing off, how often to probe.
    pub(crate) probe_interval: Duration,
}

pub(crate) async fn run_loop<W: Work>(
    work: W,
    mut planner: Planner,
    timers: Timers,
    mut rx: mpsc::UnboundedReceiver<Command>,
) {
    let mut ticker = tokio::time::interval(timers.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut probe = tokio::time::interval(timers.probe_interval);
    probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut run = std::pin::pin!(Fuse::terminated());
    let mut running = false;
    // The long poll runs beside everything else, on its own connection, so it never
    // delays a run; dropping it (at shutdown, or when the planner turns it off)
    // abandons the request.
    let mut watch = std::pin::pin!(Fuse::terminated());
    let mut watching = false;
    let mut action = planner.on(Event::Started, Instant::now());
    loop {
        let (retry_at, probing) = match action {
            Action::Run => {
                run.set(work.sync().fuse());
                running = true;
                (None, false)
            }
            Action::Probe => {
                let reachable = work.probe().await;
                action = planner.on(Event::Probed { reachable }, Instant::now());
                continue;
            }
            Action::Shutdown => {
                if running {
                    work.abandoned();
                }
                return;
            }
            Action::RunAt { at, probe } => (Some(at), probe),
            Action::KeepRunning | Action::Idle | Action::StoppedForAuth => (None, false),
        };
        let watch_at = match planner.watch(Instant::now()) {
            Watch::Keep => {
                if !watching {
                    watch.set(work.watch().fuse());
                    watching = true;
                }
                None
            }
            Watch::At(at) => Some(at),
            Watch::Off => {
                if watching {
                    watch.set(Fuse::terminated());
                    watching = false;
                }
                None
            }
        };
        // While a run is in flight only commands are read (and coalesced by the
        // planner); the timers wait for it.
        let event = tokio::select! {
            outcome = &mut run, if running => {
                running = false;
                Event::Finished(outcome)
            }
            command = rx.recv() => match command {
                None | Some(Command::Shutdown) => Event::Shutdown,
                Some(Command::SyncNow) => Event::SyncNow,
                Some(Command::ReportQueued) => {
                    work.report_queued().await;
                    Event::ReportQueued
                }
            },
            _ = ticker.tick(), if !running => Event::Tick,
            _ = sleep_until(retry_at), if !running && retry_at.is_some() => Event::RetryDue,
            _ = probe.tick(), if !running && probing => Event::ProbeDue,
            watched = &mut watch, if watching => {
                watching = false;
                Event::Watched(watched)
            }
            _ = sleep_until(watch_at), if !watching && watch_at.is_some() => Event::WatchDue,
        };
        let now = Instant::now();
        action = planner.on(event, now);
        if let (Event::Finished(Outcome::Failed { .. }), Some(at)) = (event, planner.retry_at()) {
            let delay = at.saturating_duration_since(now);
            tracing::info!(delay_ms = delay.as_millis() as u64, "sync will retry");
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::Backoff;

    /// A scripted stand-in for the engine. The real engine's runs need sockets and
    /// SQLite on blocking threads, which paused time cannot drive: its auto-advance
    /// would fire the request timeouts while the kernel answers. `tests/rules.rs`
    /// runs the same loop against the real server in real time.
    #[derive(Default)]
    struct Scripted {
        /// Outcomes of the coming runs, in order; then `Synced`.
        outcomes: Mutex<VecDeque<Outcome>>,
        /// Answers of the coming probes, in order; then unreachable.
        probes: Mutex<VecDeque<bool>>,
        run_time: Duration,
        started: Mutex<Vec<Duration>>,
        probed: Mutex<Vec<Duration>>,
        abandoned: Mutex<bool>,
        epoch: Mutex<Option<Instant>>,
        /// The coming long polls: how long each takes and how it ends; then one
        /// that never answers.
        watches: Mutex<VecDeque<(Duration, Watched)>>,
        watched: Mutex<Vec<Duration>>,
    }

    impl Scripted {
        fn since_start(&self) -> Duration {
            let epoch = *self.epoch.lock().unwrap().get_or_insert_with(Instant::now);
            epoch.elapsed()
        }
        fn started(&self) -> Vec<Duration> {
            self.started.lock().unwrap().clone()
        }
        fn watched(&self) -> Vec<Duration> {
            self.watched.lock().unwrap().clone()
        }
    }

    impl Work for Arc<Scripted> {
        async fn sync(&self) -> Outcome {
            let at = self.since_start();
            self.started.lock().unwrap().push(at);
            tokio::time::sleep(self.run_time).await;
            let next = self.outcomes.lock().unwrap().pop_front();
            next.unwrap_or(Outcome::Synced)
        }
        async fn probe(&self) -> bool {
            let at = self.since_start();
            self.probed.lock().unwrap().push(at);
            let next = self.probes.lock().unwrap().pop_front();
            next.unwrap_or(false)
        }
        async fn report_queued(&self) {}
        fn abandoned(&self) {
            *self.abandoned.lock().unwrap() = true;
        }
        async fn watch(&self) -> Watched {
            let at = self.since_start();
            self.watched.lock().unwrap().push(at);
            let next = self.watches.lock().unwrap().pop_front();
            match next {
                Some((takes, outcome)) => {
                    tokio::time::sleep(takes).await;
                    outcome
                }
                None => std::future::pending().await,
            }
        }
    }

    fn start(
        work: &Arc<Scripted>,
        backoff: (Duration, Duration),
        timers: Timers,
    ) -> (mpsc::UnboundedSender<Command>, tokio::task::JoinHandle<()>) {
        work.since_start();
        let (tx, rx) = mpsc::unbounded_channel();
        let planner = Planner::new(
            Backoff::new(backoff.0, backoff.1),
            fastrand::Rng::with_seed(11),
            true,
        );
        let task = tokio::spawn(run_loop(work.clone(), planner, timers, rx));
        (tx, task)
    }

    const fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }
    const fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }
    const HOUR: Duration = secs(3600);

    #[tokio::test(start_paused = true)]
    async fn ten_requests_during_a_run_become_one_more_run() {
        let work = Arc::new(Scripted {
            run_time: ms(300),
            ..Default::default()
        });
        let timers = Timers {
            interval: HOUR,
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        tokio::time::sleep(ms(100)).await;
        for _ in 0..5 {
            tx.send(Command::ReportQueued).unwrap();
            tx.send(Command::SyncNow).unwrap();
        }
        tokio::time::sleep(secs(600)).await;
        // The ticker's first tick is due when the loop starts, so the first wait
        // after the runs runs once more; the next tick is an hour away.
        assert_eq!(work.started(), [ms(0), ms(300), ms(600)]);
        tx.send(Command::Shutdown).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_ticker_runs_a_sync_every_interval_while_idle() {
        let work = Arc::new(Scripted {
            run_time: secs(1),
            ..Default::default()
        });
        let timers = Timers {
            interval: secs(60),
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        tokio::time::sleep(secs(600)).await;
        let started = work.started();
        assert_eq!(&started[..2], [secs(0), secs(1)]);
        assert_eq!(started.len(), 11, "{started:?}");
        assert!(
            started.windows(2).skip(1).all(|w| w[1] - w[0] == secs(60)),
            "{started:?}"
        );
        tx.send(Command::Shutdown).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_backoff_stops_the_loop_at_once() {
        let work = Arc::new(Scripted {
            run_time: ms(100),
            outcomes: Mutex::new(VecDeque::from([Outcome::Failed {
                retry_after: Some(HOUR),
                offline: false,
            }])),
            ..Default::default()
        });
        let timers = Timers {
            interval: secs(60),
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), HOUR), timers);
        tokio::time::sleep(secs(600)).await;
        assert_eq!(work.started(), [ms(0)], "the ticker waits for the backoff");
        tx.send(Command::Shutdown).unwrap();
        tokio::time::timeout(ms(1), task)
            .await
            .expect("stopped without waiting for the deadline")
            .unwrap();
        assert_eq!(work.started(), [ms(0)]);
        assert!(!*work.abandoned.lock().unwrap(), "no run was in flight");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_a_run_abandons_it() {
        let work = Arc::new(Scripted {
            run_time: HOUR,
            ..Default::default()
        });
        let timers = Timers {
            interval: secs(60),
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        tokio::time::sleep(secs(5)).await;
        tx.send(Command::Shutdown).unwrap();
        tokio::time::timeout(ms(1), task).await.unwrap().unwrap();
        assert!(*work.abandoned.lock().unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_every_handle_stops_the_loop() {
        let work = Arc::new(Scripted::default());
        let timers = Timers {
            interval: secs(60),
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        drop(tx);
        tokio::time::timeout(ms(1), task).await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_offline_probe_that_reaches_the_server_ends_an_hour_of_backoff() {
        let work = Arc::new(Scripted {
            run_time: ms(100),
            outcomes: Mutex::new(VecDeque::from([Outcome::Failed {
                retry_after: Some(HOUR),
                offline: true,
            }])),
            probes: Mutex::new(VecDeque::from([false, false, true])),
            ..Default::default()
        });
        let timers = Timers {
            interval: HOUR,
            probe_interval: secs(10),
        };
        // Without the probe the next run is an hour away.
        let (tx, task) = start(&work, (secs(1), HOUR), timers);
        tokio::time::sleep(secs(60)).await;
        let probed = work.probed.lock().unwrap().clone();
        // The probe's first tick is due when the loop starts, then every 10 s.
        assert_eq!(probed, [ms(100), ms(10_100), ms(20_100)]);
        assert_eq!(work.started(), [ms(0), ms(20_100)]);
        tx.send(Command::Shutdown).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn refused_credentials_wait_for_sync_now() {
        let work = Arc::new(Scripted {
            run_time: ms(100),
            outcomes: Mutex::new(VecDeque::from([Outcome::CredentialsRefused])),
            ..Default::default()
        });
        let timers = Timers {
            interval: secs(60),
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        tokio::time::sleep(secs(600)).await;
        tx.send(Command::ReportQueued).unwrap();
        tokio::time::sleep(secs(60)).await;
        assert_eq!(work.started(), [ms(0)], "neither the ticker nor a report");
        tx.send(Command::SyncNow).unwrap();
        tokio::time::sleep(ms(1)).await;
        assert_eq!(work.started(), [ms(0), secs(660)]);
        tx.send(Command::Shutdown).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_on_the_long_poll_runs_at_once_without_the_ticker() {
        let work = Arc::new(Scripted {
            run_time: ms(100),
            watches: Mutex::new(VecDeque::from([(secs(5), Watched::Changed)])),
            ..Default::default()
        });
        let timers = Timers {
            interval: HOUR,
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        tokio::time::sleep(secs(60)).await;
        // The first run, the ticker's first tick, then the change; the long poll
        // started once the first run synced and again after it answered.
        assert_eq!(work.started(), [ms(0), ms(100), ms(5_100)]);
        assert_eq!(work.watched(), [ms(100), ms(5_100)]);
        tx.send(Command::Shutdown).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_without_the_long_poll_is_not_asked_again_and_the_ticker_runs() {
        let work = Arc::new(Scripted {
            run_time: ms(100),
            watches: Mutex::new(VecDeque::from([(ms(5), Watched::NotOffered)])),
            ..Default::default()
        });
        let timers = Timers {
            interval: secs(60),
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        tokio::time::sleep(secs(600)).await;
        assert_eq!(work.watched(), [ms(100)]);
        assert_eq!(work.started().len(), 11, "{:?}", work.started());
        tx.send(Command::Shutdown).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn long_poll_failures_back_off() {
        let failed = (ms(0), Watched::Failed { retry_after: None });
        let work = Arc::new(Scripted {
            run_time: ms(100),
            watches: Mutex::new(VecDeque::from([failed, failed, failed])),
            ..Default::default()
        });
        let timers = Timers {
            interval: HOUR,
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        tokio::time::sleep(secs(60)).await;
        let watched = work.watched();
        assert_eq!(
            watched.len(),
            4,
            "three failures, then one in flight: {watched:?}"
        );
        for (i, gap) in watched.windows(2).map(|w| w[1] - w[0]).enumerate() {
            assert!(gap <= secs(1 << i), "failure {i}: waited {gap:?}");
        }
        assert_eq!(work.started(), [ms(0), ms(100)], "failures run nothing");
        tx.send(Command::Shutdown).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_with_a_long_poll_in_flight_returns_at_once() {
        let work = Arc::new(Scripted {
            run_time: ms(100),
            ..Default::default()
        });
        let timers = Timers {
            interval: HOUR,
            probe_interval: secs(10),
        };
        let (tx, task) = start(&work, (secs(1), secs(300)), timers);
        tokio::time::sleep(secs(5)).await;
        assert_eq!(work.watched(), [ms(100)], "one long poll in flight");
        tx.send(Command::Shutdown).unwrap();
        tokio::time::timeout(ms(1), task).await.unwrap().unwrap();
        assert!(!*work.abandoned.lock().unwrap(), "no run was in flight");
    }
}
