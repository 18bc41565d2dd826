//! Image policies: `(tags, policy) -> Choice`.
