//! Secret masking for diffs. A diff must say *that* a Secret value changed without saying anything
//! about the value. A hash (even a truncated one) is not enough: a short password or token is
//! found from its hash by trying candidates. So, like Argo CD, the desired and live objects are
//! masked as a pair: each value becomes a row of `+`, and the only thing the masks reveal is
//! whether the two sides of one key are equal. Unlike Argo CD, masks are chosen per key, not per
//! distinct value, so they also hide which keys share a value.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::object::group_of;

/// What every Secret value is shown as.
pub const MASK: &str = "++++++++";
/// What the desired value is shown as when it differs from the live one: one `+` longer, so the
/// line changes in the diff.
pub const MASK_CHANGED: &str = "+++++++++";

/// Masks `data` and `stringData` of a core `Secret` on both sides, comparing values pairwise.
/// `stringData` is write-only: the API server stores it base64-encoded in `data` (and it wins
/// over a `data` entry of the same key), so it is folded into `data` first. A live Secret then
/// compares equal to a desired one holding the same value in `stringData`.
/// Objects that are not Secrets are left alone.
pub fn mask_secret_pair(desired: Option<&mut Value>, live: Option<&mut Value>) {
    let desired = desired.filter(|object| is_secret(object));
    let live = live.filter(|object| is_secret(object));
    let (mut desired, mut live) = (desired.map(SecretData::take), live.map(SecretData::take));
    let empty = BTreeMap::new();
    let desired_values = desired.as_ref().map_or(&empty, |secret| &secret.values);
    let live_values = live.as_ref().map_or(&empty, |secret| &secret.values);
    let keys: BTreeSet<&String> = desired_values.keys().chain(live_values.keys()).collect();

    let mut desired_masked = Map::new();
    let mut live_masked = Map::new();
    for key in keys {
        let (wanted, current) = (desired_values.get(key), live_values.get(key));
        if wanted.is_some() {
            let changed = current.is_some() && wanted != current;
            let mask = if changed { MASK_CHANGED } else { MASK };
            desired_masked.insert(key.clone(), mask.into());
        }
        if current.is_some() {
            live_masked.insert(key.clone(), MASK.into());
        }
    }
    if let Some(secret) = desired.as_mut() {
        secret.put_back(desired_masked);
    }
    if let Some(secret) = live.as_mut() {
        secret.put_back(live_masked);
    }
}

/// A core-group `Secret` (`apiVersion: v1`); a CRD kind named `Secret` in another group is not.
pub fn is_secret(object: &Value) -> bool {
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && api_version.is_some_and(|version| group_of(version).is_empty())
}

/// A Secret's values taken out of the object, keyed as in `data`, base64 as the server stores.
struct SecretData<'a> {
    object: &'a mut Value,
    values: BTreeMap<String, Value>,
    /// The object had `data` or `stringData`: put a (masked) `data` back.
    had_values: bool,
}

impl<'a> SecretData<'a> {
    fn take(object: &'a mut Value) -> Self {
        let fields = object.as_object_mut().expect("a Secret is a mapping");
        let data = fields.remove("data");
        let string_data = fields.remove("stringData");
        let had_values = data.is_some() || string_data.is_some();
        let mut values = BTreeMap::new();
        for (field, content, encode) in [("data", data, false), ("stringData", string_data, true)] {
            match content {
                None | Some(Value::Null) => {}
                Some(Value::Object(entries)) => {
                    for (key, value) in entries {
                        let value = match (&value, encode) {
                            (Value::String(text), true) => Value::String(base64(text.as_bytes())),
                            _ => value,
                        };
                        values.insert(key, value);
                    }
                }
                // Not a map: nothing to compare key by key, but still never shown.
                Some(_) => {
                    values.insert(format!("<{field}>"), Value::Null);
                }
            }
        }
        Self {
            object,
            values,
            had_values,
        }
    }

    fn put_back(&mut self, masked: Map<String, Value>) {
        if self.had_values {
            self.object["data"] = Value::Object(masked);
        }
    }
}

/// Standard base64 with padding, as Kubernetes stores Secret data. Small enough to keep here
/// rather than add a crate for one direction of it.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |acc, (at, &byte)| {
            acc | (u32::from(byte) << (16 - 8 * at))
        });
        for position in 0..4 {
            if position <= chunk.len() {
                out.push(char::from(
                    ALPHABET[((group >> (18 - 6 * position)) & 63) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "type": "Opaque", "data": data})
    }

    #[test]
    fn base64_matches_the_standard() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("hunter2", "aHVudGVyMg=="),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }

    #[test]
    fn equal_values_get_equal_masks_and_changed_ones_differ() {
        let mut desired = secret(json!({"user": "YWRtaW4=", "password": "bmV3", "added": "eA=="}));
        let mut live = secret(json!({"user": "YWRtaW4=", "password": "b2xk", "removed": "eQ=="}));
        mask_secret_pair(Some(&mut desired), Some(&mut live));
        assert_eq!(
            desired["data"],
            json!({"user": MASK, "password": MASK_CHANGED, "added": MASK})
        );
        assert_eq!(
            live["data"],
            json!({"user": MASK, "password": MASK, "removed": MASK})
        );
        assert_eq!(desired["type"], "Opaque");
    }

    #[test]
    fn string_data_compares_as_its_base64() {
        let mut desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                                 "stringData": {"password": "hunter2"}});
        let mut live = secret(json!({"password": "aHVudGVyMg=="}));
        mask_secret_pair(Some(&mut desired), Some(&mut live));
        assert_eq!(desired.get("stringData"), None);
        assert_eq!(desired["data"], live["data"]);
    }

    #[test]
    fn one_sided_and_odd_shapes_are_masked() {
        let mut created = secret(json!("not-a-map-but-secret"));
        mask_secret_pair(Some(&mut created), None);
        assert!(!created.to_string().contains("not-a-map"));

        let mut empty = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "e"}});
        mask_secret_pair(None, Some(&mut empty));
        assert_eq!(empty.get("data"), None);
    }

    #[test]
    fn only_core_secrets_are_touched() {
        let mut custom = json!({"apiVersion": "vault.example.com/v1", "kind": "Secret",
                                "metadata": {"name": "x"}, "data": {"path": "kv/app"}});
        let before = custom.clone();
        mask_secret_pair(Some(&mut custom), None);
        assert_eq!(custom, before);
    }
}
