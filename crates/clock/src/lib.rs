//! TrueTime for Meridian: clock readings as intervals that are guaranteed to contain true
//! time, which is what lets transactions commit in an order that agrees with real time.
//!
//! ```text
//!  PhysicalClock ──reading──▶ TrueTime ──now()──▶ [earliest, latest]
//!  (SystemClock,               ▲    │             after(t) / before(t)
//!   ManualClock)               │    └──────────▶ commit_wait(t)
//!        sync_local / record_sync / record_marzullo (time sources)
//! ```
//!
//! # The epsilon model
//!
//! A sync learns the offset of true time from the local physical clock, give or take a
//! *sync uncertainty* (half the round trip to the source plus the source's own epsilon; or a
//! configured uncertainty for the local OS clock). From then on the clock may drift by at most
//! `drift_bound_ppm`, so
//!
//! ```text
//! epsilon = sync uncertainty + drift bound × (physical now − physical reading at last sync)
//! now()   = [reading + offset − epsilon, reading + offset + epsilon]
//! ```
//!
//! Past `max_epsilon`, or while fenced, `now()` fails and the node must stop assigning
//! timestamps. Several sources are combined with Marzullo's algorithm, which outvotes liars.
//! Nothing here reads the wall clock except [`SystemClock`]; everything is injected, so
//! simulations drive time with [`ManualClock`].
//!
//! # Where to start
//!
//! Read `truetime.rs` first (the API and the model), then `sync.rs` (how samples become an
//! offset and how drift is bounded), `marzullo.rs` (the intersection algorithm) and
//! `physical.rs` (the clocks). `timestamp.rs` defines [`Timestamp`].

mod error;
mod interval;
pub mod marzullo;
mod physical;
mod precise;
mod sync;
mod timestamp;
mod truetime;

pub use error::{ClockError, Result};
pub use interval::TtInterval;
pub use physical::{ManualClock, PhysicalClock, SystemClock};
pub use sync::{MarzulloOutcome, SyncSample, SyncSource, drift_allowance};
pub use timestamp::{ParseTimestampError, Timestamp};
pub use truetime::{ClockStatus, TrueTime, TrueTimeConfig};
