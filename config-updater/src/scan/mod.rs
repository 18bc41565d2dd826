//! Registry scanning: complete, paged, rate-limited tag listing with a tag cache.
