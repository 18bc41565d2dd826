//! Exact-byte edits of YAML files in the config repository: `(file bytes, edits) -> bytes`.
