//! Sleeps that end within tens of microseconds of their deadline, for commit wait.
//!
//! tokio's timer wheel counts whole milliseconds and rounds every deadline up to the next
//! tick, so a commit wait with 1.2 ms left sleeps between 2 and 3 ms. Commit wait is on the
//! path of every acknowledged write, and its whole point is to be no longer than the clock's
//! uncertainty requires, so [`crate::SystemClock`] sleeps on this timer instead: one thread
//! holding the pending deadlines in a heap and waiting on a condition variable until the
//! earliest (a futex wait with an absolute monotonic deadline, which the kernel ends on its
//! high-resolution timer). No crate offers this on top of tokio without a second runtime or a
//! timerfd per sleep; it is a heap and a thread.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// One pending sleep: fired by the timer thread, polled by its future.
#[derive(Debug, Default)]
struct Entry {
    fired: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Entry {
    fn waker(&self) -> MutexGuard<'_, Option<Waker>> {
        self.waker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A deadline in the heap, earliest first (ties in order of arrival).
struct Pending {
    deadline: Instant,
    seq: u64,
    entry: Arc<Entry>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest deadline first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

#[derive(Default)]
struct Pendings {
    heap: BinaryHeap<Pending>,
    seq: u64,
}

struct Timer {
    pending: Mutex<Pendings>,
    changed: Condvar,
}

impl Timer {
    /// The process's timer, its thread started on first use; `None` if the thread could not
    /// start (sleeps then fall back to tokio's timer).
    fn get() -> Option<&'static Timer> {
        static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
        *TIMER.get_or_init(|| {
            let timer: &'static Timer = Box::leak(Box::new(Timer {
                pending: Mutex::new(Pendings::default()),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("meridian-timer".into())
                .spawn(move || timer.run())
                .ok()
                .map(|_| timer)
        })
    }

    fn lock(&self) -> MutexGuard<'_, Pendings> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add(&self, deadline: Instant, entry: Arc<Entry>) {
        let mut p = self.lock();
        let earliest = p.heap.peek().is_none_or(|top| deadline < top.deadline);
        p.seq += 1;
        let seq = p.seq;
        p.heap.push(Pending {
            deadline,
            seq,
            entry,
        });
        drop(p);
        if earliest {
            self.changed.notify_one();
        }
    }

    #[allow(
        clippy::disallowed_methods,
        reason = "the timer thread measures real time against real deadlines; nothing it \
                  decides depends on wall-clock readings"
    )]
    fn run(&self) {
        let mut p = self.lock();
        loop {
            let now = Instant::now();
            while p.heap.peek().is_some_and(|top| top.deadline <= now) {
                if let Some(done) = p.heap.pop() {
                    done.entry.fired.store(true, AtomicOrdering::Release);
                    if let Some(w) = done.entry.waker().take() {
                        w.wake();
                    }
                }
            }
            p = match p.heap.peek().map(|top| top.deadline - now) {
                None => self.changed.wait(p).unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    self.changed
                        .wait_timeout(p, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// A future that completes once `duration` has passed, within the kernel's timer slack
/// (about 50 µs) rather than tokio's millisecond.
#[allow(
    clippy::disallowed_methods,
    reason = "a sleep's deadline is measured on the monotonic clock; it decides no timestamp"
)]
pub(crate) fn sleep(duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    match (Timer::get(), Instant::now().checked_add(duration)) {
        (Some(timer), Some(deadline)) => Box::pin(Sleep {
            timer,
            deadline,
            entry: None,
        }),
        _ => Box::pin(tokio::time::sleep(duration)),
    }
}

struct Sleep {
    timer: &'static Timer,
    deadline: Instant,
    entry: Option<Arc<Entry>>,
}

impl Future for Sleep {
    type Output = ();

    #[allow(
        clippy::disallowed_methods,
        reason = "compares the monotonic clock with the sleep's own deadline"
    )]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(entry) = &self.entry {
            if entry.fired.load(AtomicOrdering::Acquire) {
                return Poll::Ready(());
            }
            *entry.waker() = Some(cx.waker().clone());
            // The timer may have fired between the check and storing the waker.
            if entry.fired.load(AtomicOrdering::Acquire) {
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let entry = Arc::new(Entry::default());
        *entry.waker() = Some(cx.waker().clone());
        self.timer.add(self.deadline, entry.clone());
        self.entry = Some(entry);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods, reason = "measures a real sleep")]
    #[tokio::test]
    async fn sleeps_end_in_deadline_order_and_not_early() {
        let start = Instant::now();
        let lengths = [3_000u64, 500, 1_500, 500, 0];
        let tasks: Vec<_> = lengths
            .iter()
            .map(|&us| {
                tokio::spawn(async move {
                    sleep(Duration::from_micros(us)).await;
                    start.elapsed()
                })
            })
            .collect();
        for (task, us) in tasks.into_iter().zip(lengths) {
            let took = task.await.unwrap();
            assert!(
                took >= Duration::from_micros(us),
                "{us} µs sleep took {took:?}"
            );
        }
    }
}
