//! Normalized desired-against-live diffs, with Secrets masked.
