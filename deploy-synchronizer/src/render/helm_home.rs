//! Helm's scratch home for one render: the registry logins and chart repositories it may use,
//! as files (credentials never go on a command line, where any process of the pod could read
//! them), and which dependencies of a chart must be fetched before `helm template`.
//!
//! - **Registry logins** (`HELM_REGISTRY_CONFIG`): docker's `config.json` form with `auths` only,
//!   so no credential helper can be named.
//! - **Repositories** (`HELM_REPOSITORY_CONFIG`): one entry per HTTP chart repository, with its
//!   host's login if there is one, and the CA.
//! - **Dependencies**: a chart's `Chart.yaml` names them; those not vendored in `charts/` are
//!   fetched by `helm dependency build` (from `Chart.lock` when there is one), from the
//!   registries and repositories they name with the logins above.
//!
//! All pure; [`super::helm`] writes the files and runs helm.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use sluice_shared::registry_auth::Credentials;

/// Credentials for one host (`127.0.0.1:15443`, `charts.example.com`).
pub type Login = (String, Credentials);

/// The registry login file for `logins`; `None` when there is none.
pub fn registry_logins(logins: &[Login]) -> Option<String> {
    let auths: serde_json::Map<String, serde_json::Value> = logins
        .iter()
        .filter_map(|(host, credentials)| {
            let (username, password) = credentials.user_password()?;
            let auth = STANDARD.encode(format!("{username}:{password}"));
            Some((host.clone(), json!({ "auth": auth })))
        })
        .collect();
    (!auths.is_empty()).then(|| json!({ "auths": auths }).to_string())
}

/// The repositories file for HTTP chart repositories (`name`, `url`), each with its host's login
/// from `logins` and the CA file (JSON is YAML; quoting is serde's).
pub fn repositories_file(
    repositories: &[(String, String)],
    logins: &[Login],
    ca_file: Option<&str>,
) -> String {
    let entries: Vec<serde_json::Value> = repositories
        .iter()
        .map(|(name, url)| {
            let mut entry = json!({"name": name, "url": url});
            let host = host_of(url);
            let login = logins.iter().find(|(h, _)| *h == host);
            if let Some((username, password)) = login.and_then(|(_, c)| c.user_password()) {
                entry["username"] = username.into();
                entry["password"] = password.into();
            }
            if let Some(file) = ca_file {
                entry["caFile"] = file.into();
            }
            entry
        })
        .collect();
    json!({"apiVersion": "", "repositories": entries}).to_string()
}

/// The host (with port) of `scheme://host/path`.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// One dependency of a chart, as `Chart.yaml` names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChartFile {
    dependencies: Vec<Dependency>,
}

/// The dependencies of the chart whose `Chart.yaml` is `chart_yaml` that are not vendored:
/// neither `charts/<name>-<version>.tgz` nor `charts/<name>/` among `vendored` (the names in
/// `charts/`). `Err`: `Chart.yaml` is not YAML (helm's own message will say more).
pub fn missing_dependencies(
    chart_yaml: &str,
    vendored: &[String],
) -> Result<Vec<Dependency>, String> {
    let chart: ChartFile = serde_saphyr::from_str(chart_yaml).map_err(|e| e.to_string())?;
    Ok(chart
        .dependencies
        .into_iter()
        .filter(|dependency| {
            let prefix = format!("{}-", dependency.name);
            !vendored.iter().any(|entry| {
                *entry == dependency.name || (entry.starts_with(&prefix) && entry.ends_with(".tgz"))
            })
        })
        .collect())
}

/// The HTTP chart repositories `dependencies` come from, named for the repositories file
/// (`dependency-0`…); OCI registries and local `file://` charts need no entry.
pub fn dependency_repositories(dependencies: &[Dependency]) -> Vec<(String, String)> {
    let mut urls: Vec<&str> = dependencies
        .iter()
        .map(|d| d.repository.trim_end_matches('/'))
        .filter(|r| r.starts_with("https://") || r.starts_with("http://"))
        .collect();
    urls.sort_unstable();
    urls.dedup();
    urls.into_iter()
        .enumerate()
        .map(|(n, url)| (format!("dependency-{n}"), url.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str) -> Credentials {
        Credentials::Basic {
            username: user.into(),
            password: "pw".into(),
        }
    }

    #[test]
    fn logins_hold_auths_only_and_nothing_when_anonymous() {
        let logins = vec![
            ("127.0.0.1:15443".to_owned(), basic("ci")),
            ("open.example".to_owned(), Credentials::Anonymous),
        ];
        let file: serde_json::Value =
            serde_json::from_str(&registry_logins(&logins).unwrap()).unwrap();
        let auths = file["auths"].as_object().unwrap();
        assert_eq!(auths.len(), 1);
        assert_eq!(
            STANDARD
                .decode(auths["127.0.0.1:15443"]["auth"].as_str().unwrap())
                .unwrap(),
            b"ci:pw"
        );
        assert_eq!(file.as_object().unwrap().len(), 1);
        assert_eq!(registry_logins(&[]), None);
    }

    #[test]
    fn a_repository_gets_its_own_hosts_login_and_no_other() {
        let logins = vec![("charts.example.com".to_owned(), basic("ci"))];
        let repositories = vec![
            (
                "a".to_owned(),
                "https://charts.example.com/stable".to_owned(),
            ),
            ("b".to_owned(), "https://elsewhere.example".to_owned()),
        ];
        let file: serde_json::Value = serde_json::from_str(&repositories_file(
            &repositories,
            &logins,
            Some("/h/ca.crt"),
        ))
        .unwrap();
        assert_eq!(file["repositories"][0]["username"], "ci");
        assert!(file["repositories"][1].get("username").is_none());
        assert_eq!(file["repositories"][1]["caFile"], "/h/ca.crt");
    }

    #[test]
    fn dependencies_not_vendored_are_missing() {
        let chart = "# The storefront, built from the shop and its cache.\napiVersion: v2\nname: storefront\nversion: 0.3.0\ndependencies:\n  - name: shop\n    version: 1.4.2 # pinned\n    repository: \"oci://127.0.0.1:15000/charts\"\n  - name: cache\n    version: ~2.0\n    repository: https://charts.example.com/\n  - name: common\n    version: 0.1.0\n    repository: file://../common\n";
        let missing = missing_dependencies(chart, &["common".to_owned()]).unwrap();
        let names: Vec<&str> = missing.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["shop", "cache"]);
        let vendored = [
            "shop-1.4.2.tgz".to_owned(),
            "cache-2.0.1.tgz".to_owned(),
            "common".to_owned(),
        ];
        assert!(missing_dependencies(chart, &vendored).unwrap().is_empty());
        assert!(
            missing_dependencies("apiVersion: v2\nname: x\n", &[])
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            dependency_repositories(&missing),
            [(
                "dependency-0".to_owned(),
                "https://charts.example.com".to_owned()
            )]
        );
    }
}
