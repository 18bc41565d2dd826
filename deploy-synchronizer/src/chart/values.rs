//! `spec.helm.valuesFrom`: values documents from keys of ConfigMaps and Secrets. [`select`] is
//! pure (which document a reference yields, or why none); [`read`] fetches the objects.
//!
//! A Secret's document is checked to be a YAML mapping, but no parser message about it is ever
//! repeated: such a message can quote the line it stopped at, which is the secret.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};
use serde_json::Value;

use crate::render::{RenderError, RenderErrors};
use crate::resource::{ValuesKind, ValuesReference};

/// One values document and where it came from (`ConfigMap shop-values, key values.yaml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValuesDocument {
    pub from: String,
    pub text: String,
}

/// `ConfigMap shop-values, key values.yaml`.
pub fn describe(reference: &ValuesReference) -> String {
    let kind = match reference.kind {
        ValuesKind::ConfigMap => "ConfigMap",
        ValuesKind::Secret => "Secret",
    };
    format!("{kind} {}, key {}", reference.name, reference.values_key)
}

/// The document `reference` selects from its object's data (`None`: the object does not exist).
/// `Ok(None)`: nothing to merge (optional and missing, or an empty document).
pub fn select(
    reference: &ValuesReference,
    data: Option<&BTreeMap<String, Vec<u8>>>,
) -> Result<Option<ValuesDocument>, RenderError> {
    let from = describe(reference);
    let fail = |reason: String| RenderError::ValuesFrom {
        from: from.clone(),
        reason,
    };
    let Some(data) = data else {
        return match reference.optional {
            true => Ok(None),
            false => Err(fail(
                "does not exist in the GitSync's namespace (create it, or mark the reference optional)".into(),
            )),
        };
    };
    let Some(bytes) = data.get(&reference.values_key) else {
        return match reference.optional {
            true => Ok(None),
            false => {
                let keys: Vec<&str> = data.keys().map(String::as_str).collect();
                Err(fail(format!("no such key; it has: {}", keys.join(", "))))
            }
        };
    };
    let text = String::from_utf8(bytes.clone()).map_err(|_| fail("not UTF-8 text".into()))?;
    let secret = reference.kind == ValuesKind::Secret;
    match serde_saphyr::from_str::<Value>(&text) {
        Ok(Value::Object(_)) => Ok(Some(ValuesDocument { from, text })),
        Ok(Value::Null) => Ok(None),
        Ok(_) => Err(fail("is not a YAML mapping of values".into())),
        Err(_) if secret => Err(fail("is not valid YAML".into())),
        Err(error) => Err(fail(format!("is not valid YAML: {error}"))),
    }
}

/// Reads every reference's object and selects its document, in order; every failure is
/// reported together.
pub async fn read(
    client: &Client,
    namespace: &str,
    references: &[ValuesReference],
) -> Result<Vec<ValuesDocument>, RenderErrors> {
    let mut documents = Vec::new();
    let mut errors = Vec::new();
    for reference in references {
        let data = match object_data(client, namespace, reference).await {
            Ok(data) => data,
            Err(error) => {
                errors.push(RenderError::ValuesFrom {
                    from: describe(reference),
                    reason: format!("cannot be read: {error}"),
                });
                continue;
            }
        };
        match select(reference, data.as_ref()) {
            Ok(Some(document)) => documents.push(document),
            Ok(None) => {}
            Err(error) => errors.push(error),
        }
    }
    RenderErrors::check(errors)?;
    Ok(documents)
}

/// The object's keys and values, binary ones included; `None` when it does not exist.
async fn object_data(
    client: &Client,
    namespace: &str,
    reference: &ValuesReference,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, kube::Error> {
    Ok(match reference.kind {
        ValuesKind::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            api.get_opt(&reference.name).await?.map(|map| {
                let text = map.data.unwrap_or_default().into_iter();
                let binary = map.binary_data.unwrap_or_default().into_iter();
                text.map(|(k, v)| (k, v.into_bytes()))
                    .chain(binary.map(|(k, v)| (k, v.0)))
                    .collect()
            })
        }
        ValuesKind::Secret => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            api.get_opt(&reference.name)
                .await?
                .map(crate::source::secret_data)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(kind: ValuesKind, optional: bool) -> ValuesReference {
        ValuesReference {
            kind,
            name: "shop-values".into(),
            values_key: "values.yaml".into(),
            optional,
        }
    }

    fn data(key: &str, text: &str) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(key.to_owned(), text.as_bytes().to_vec())])
    }

    #[test]
    fn a_mapping_under_the_key_is_the_document() {
        let found = select(
            &reference(ValuesKind::ConfigMap, false),
            Some(&data("values.yaml", "# prod\nweb:\n  replicas: 3\n")),
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.from, "ConfigMap shop-values, key values.yaml");
        assert!(found.text.contains("replicas: 3"));
    }

    #[test]
    fn missing_objects_and_keys_fail_unless_optional() {
        let required = reference(ValuesKind::ConfigMap, false);
        let error = select(&required, None).unwrap_err().to_string();
        assert!(error.contains("ConfigMap shop-values"), "{error}");
        assert!(error.contains("does not exist"), "{error}");
        let error = select(&required, Some(&data("other.yaml", "a: 1")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no such key; it has: other.yaml"), "{error}");

        let optional = reference(ValuesKind::Secret, true);
        assert_eq!(select(&optional, None).unwrap(), None);
        assert_eq!(
            select(&optional, Some(&data("other.yaml", "a: 1"))).unwrap(),
            None
        );
    }

    #[test]
    fn an_empty_document_adds_nothing() {
        let found = select(
            &reference(ValuesKind::ConfigMap, false),
            Some(&data("values.yaml", "# nothing yet\n")),
        );
        assert_eq!(found.unwrap(), None);
    }

    #[test]
    fn a_broken_secret_document_is_refused_without_quoting_it() {
        let broken = "password: [hunter2-not-closed\n";
        let error = select(
            &reference(ValuesKind::Secret, false),
            Some(&data("values.yaml", broken)),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("Secret shop-values, key values.yaml"),
            "{error}"
        );
        assert!(error.contains("not valid YAML"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");

        let error = select(
            &reference(ValuesKind::ConfigMap, false),
            Some(&data("values.yaml", "- a list\n- of things\n")),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("not a YAML mapping"), "{error}");
    }
}
