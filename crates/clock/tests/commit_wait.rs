//! Commit wait, on tokio's paused clock so that waiting is deterministic.

use std::sync::Arc;
use std::time::Duration;

use meridian_clock::{ClockError, ManualClock, PhysicalClock, Timestamp, TrueTime, TrueTimeConfig};
use tokio::time::timeout;

const START: Timestamp = Timestamp::from_nanos(1_700_000_000_000_000_000);
const MS: Duration = Duration::from_millis(1);

/// A physical clock that follows tokio's (paused, auto-advancing) clock.
#[derive(Debug)]
struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "this clock exists to follow tokio's test clock"
    )]
    fn new() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl PhysicalClock for TokioClock {
    fn now(&self) -> Timestamp {
        START.saturating_add(self.origin.elapsed())
    }
}

fn manual() -> (ManualClock, Arc<TrueTime>) {
    let clock = ManualClock::new(START);
    let tt = TrueTime::new(Arc::new(clock.clone()), TrueTimeConfig::default());
    (clock, Arc::new(tt))
}

#[tokio::test(start_paused = true)]
async fn waits_until_the_manual_clock_passes_t() {
    let (clock, tt) = manual();
    let t = tt.now().unwrap().latest; // START + 1 ms: needs earliest to move 2 ms
    let mut waiter = tokio::spawn({
        let tt = Arc::clone(&tt);
        async move { tt.commit_wait(t).await }
    });

    // The physical clock is frozen, so a second of tokio time passes without it returning.
    assert!(timeout(Duration::from_secs(1), &mut waiter).await.is_err());
    // 2 ms is not enough: drift has widened epsilon a little meanwhile.
    clock.advance(2 * MS);
    assert!(!tt.after(t).unwrap());
    assert!(timeout(Duration::from_secs(1), &mut waiter).await.is_err());

    clock.advance(MS);
    let waited = timeout(Duration::from_secs(1), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(tt.after(t).unwrap());
    assert_eq!(waited, 3 * MS);
}

#[tokio::test(start_paused = true)]
async fn waits_about_two_epsilon_on_a_running_clock() {
    let tt = TrueTime::new(Arc::new(TokioClock::new()), TrueTimeConfig::default());
    let now = tt.now().unwrap();
    let t = now.latest;
    let waited = tt.commit_wait(t).await.unwrap();
    assert!(tt.after(t).unwrap());
    // The wait is 2 ε (2 ms) plus the drift meanwhile, rounded up to tokio's 1 ms timer.
    assert!(waited > 2 * MS && waited <= 4 * MS, "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn returns_at_once_when_t_has_passed() {
    let (_clock, tt) = manual();
    let earliest = tt.now().unwrap().earliest;
    assert_eq!(tt.commit_wait(earliest.prev()).await, Ok(Duration::ZERO));
}

#[tokio::test(start_paused = true)]
async fn fails_when_fenced_while_waiting() {
    let (_clock, tt) = manual();
    let t = tt.now().unwrap().latest;
    let mut waiter = tokio::spawn({
        let tt = Arc::clone(&tt);
        async move { tt.commit_wait(t).await }
    });
    assert!(timeout(Duration::from_secs(1), &mut waiter).await.is_err());
    tt.fence("test");
    let result = timeout(Duration::from_secs(1), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        result,
        Err(ClockError::Fenced {
            reason: "test".into()
        })
    );
}

#[tokio::test]
async fn another_task_advancing_the_clock_releases_the_waiter() {
    let (clock, tt) = manual();
    let t = tt.now().unwrap().latest;
    let waiter = tokio::spawn({
        let tt = Arc::clone(&tt);
        async move { tt.commit_wait(t).await }
    });
    let advancer = tokio::spawn(async move {
        // Advance in 100 µs steps, never past what the wait needs by more than a step.
        while !tt.after(t).unwrap() {
            clock.advance(Duration::from_micros(100));
            tokio::task::yield_now().await;
        }
        clock.now()
    });
    let waited = timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let final_reading = advancer.await.unwrap();
    // The clock needed just over 2 ms to pass t; the waiter saw at least that much.
    assert!(waited > 2 * MS, "{waited:?}");
    assert!(waited <= final_reading.duration_since(START));
}
