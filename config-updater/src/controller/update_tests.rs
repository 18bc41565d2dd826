//! Unit tests of the `ImageUpdate` reconciler's pure parts.

use super::*;

#[test]
fn batch_delays() {
    assert_eq!(parse_batch_delay("0s"), Ok(Duration::ZERO));
    assert_eq!(parse_batch_delay("30s"), Ok(Duration::from_secs(30)));
    assert!(parse_batch_delay("soon").is_err());
}

#[test]
fn only_policies_with_a_latest_ref_are_chosen() {
    let with: ImagePolicy = serde_json::from_value(json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"imageRepositoryRef": {"name": "web"}, "policy": {"semver": {"range": ">=1.0.0"}}},
        "status": {"latestRef": {"name": "127.0.0.1:5000/demo/web", "tag": "1.4.3"}}
    }))
    .unwrap();
    let mut without = with.clone();
    without.metadata.name = Some("api".into());
    without.status = None;
    let chosen = chosen_of(&[with, without]);
    assert_eq!(chosen.len(), 1);
    let (id, c) = chosen.iter().next().unwrap();
    assert_eq!(id.to_string(), "apps:web");
    assert_eq!(c.image.to_string(), "127.0.0.1:5000/demo/web:1.4.3");
}
