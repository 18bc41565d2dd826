//! Update windows and batching: when gathered bumps may be pushed.
//!
//! Pure: every function takes `now` from the caller, so the daemon's clock (and the tests')
//! is the only source of time. [`Window`] says when pushes may start; [`Batcher`] decides, for
//! the bumps gathered in [`Pending`], whether to push now (all of them, as one commit) or when
//! to decide again.

mod batch;
mod window;

pub use batch::{Batcher, Decision, NextPush, Pending, PendingChange, Recorded};
pub use window::{CompiledWindow, Window, WindowError};
