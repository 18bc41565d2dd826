//! Update windows and batching: when gathered bumps may be pushed.
