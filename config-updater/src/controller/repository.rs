//! The `ImageRepository` reconciler: read the auth and CA Secrets, scan, keep the tags in the
//! shared state, write a summary into status. Scans once per interval; a webhook event (see
//! [`super::State::repositories_matching`]) or a spec change scans at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::state::Scanned;
use super::status::{parse_timestamp, set_ready, timestamp};
use super::{Context, Error, key_of};
use crate::resource::{ImageRepository, ImageRepositoryStatus};
use crate::scan::config::ValidAccess;
use crate::scan::{
    ClientOptions, Credentials, RegistryClient, ScanError, TagCache,
    auth::credentials_from_dockerconfigjson,
};

/// How many of the newest tags status lists.
pub const LATEST_TAGS: usize = 10;

pub async fn reconcile(repo: Arc<ImageRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = key_of(repo.as_ref());
    let result = reconcile_inner(&repo, &ctx, &key).await;
    ctx.finish("ImageRepository", &key, started, result)
}

async fn reconcile_inner(
    repo: &ImageRepository,
    ctx: &Context,
    key: &str,
) -> Result<Action, Error> {
    let ns = repo.namespace().unwrap_or_default();
    if repo.metadata.deletion_timestamp.is_some() {
        ctx.state.forget_repository(key);
        return Ok(Action::await_change());
    }
    ctx.state.watch_image(key, &repo.spec.access.image);
    if repo.spec.suspend {
        return Ok(Action::await_change());
    }
    let status = repo.status.clone().unwrap_or_default();
    let access = match repo.spec.access.validate() {
        Ok(access) => access,
        Err(e) => return fail(repo, ctx, &status, e).await,
    };

    // Due? A webhook, a spec change or a restart (nothing in memory) scans now.
    // (Both consumed: a webhook here, or one handed over by another replica.)
    let forced = ctx.state.take_forced(key) | ctx.requested(repo);
    let spec_changed = status.observed_generation != repo.metadata.generation;
    let remembered = ctx.state.scanned(key).is_some();
    if !forced
        && !spec_changed
        && remembered
        && let Some(last) = status.last_scan_time.as_deref().and_then(parse_timestamp)
    {
        let since = (Utc::now() - last).to_std().unwrap_or_default();
        if let Some(left) = access.interval.checked_sub(since).filter(|d| !d.is_zero()) {
            return Ok(Action::requeue(left));
        }
    }

    let client = match client_for(repo, ctx, &ns, &access).await {
        Ok(client) => Arc::new(client),
        Err(Error::Scan(e)) => return fail(repo, ctx, &status, e).await,
        Err(e) => return Err(e),
    };
    let image_key = access.image.to_string();
    let mut cache = TagCache::default();
    if let Some(entry) = ctx.state.cached(&image_key) {
        cache.put(image_key.clone(), entry);
    }
    let outcome = crate::scan::scan(&client, &access, &mut cache).await;
    ctx.state
        .set_cached(&image_key, cache.get(&image_key).cloned());
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => return fail(repo, ctx, &status, e).await,
    };
    let tags = outcome.list.tags;
    tracing::info!(
        repository = key,
        tags = tags.len(),
        changed = outcome.changed,
        requests = outcome.list.requests,
        forced,
        "scanned"
    );
    let message = format!(
        "{} tags ({} excluded, {} malformed ignored)",
        tags.len(),
        outcome.list.excluded,
        outcome.list.malformed
    );
    let new_status = ImageRepositoryStatus {
        observed_generation: repo.metadata.generation,
        last_scan_time: Some(timestamp(Utc::now())),
        tag_count: Some(tags.len() as i64),
        latest_tags: latest(&tags),
        conditions: set_ready(
            &status.conditions,
            true,
            "Scanned",
            &message,
            repo.metadata.generation,
        ),
    };
    ctx.state.set_scanned(
        key,
        Scanned {
            image: repo.spec.access.image.clone(),
            tags: Arc::new(tags),
            client: Some(client),
        },
    );
    patch(ctx, &ns, &repo.name_any(), &new_status).await?;
    Ok(Action::requeue(access.interval))
}

/// The newest tags first, as far as text order tells (semver-looking tags sort by version).
fn latest(tags: &[String]) -> Vec<String> {
    let mut sorted: Vec<&String> = tags.iter().collect();
    sorted.sort_by(|a, b| {
        match (
            semver::Version::parse(a.trim_start_matches('v')),
            semver::Version::parse(b.trim_start_matches('v')),
        ) {
            (Ok(x), Ok(y)) => y.cmp(&x),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            _ => b.cmp(a),
        }
    });
    sorted.into_iter().take(LATEST_TAGS).cloned().collect()
}

/// Records a scan failure in status (Ready=False with the error's reason) and returns it for
/// the error policy's backoff.
async fn fail(
    repo: &ImageRepository,
    ctx: &Context,
    status: &ImageRepositoryStatus,
    error: ScanError,
) -> Result<Action, Error> {
    let mut new_status = status.clone();
    new_status.observed_generation = repo.metadata.generation;
    new_status.conditions = set_ready(
        &status.conditions,
        false,
        error.reason(),
        &error.to_string(),
        repo.metadata.generation,
    );
    if new_status != *status {
        super::status::publish(ctx, repo, true, error.reason(), &error.to_string()).await;
        patch(
            ctx,
            &repo.namespace().unwrap_or_default(),
            &repo.name_any(),
            &new_status,
        )
        .await?;
    }
    Err(Error::Scan(error))
}

async fn patch(
    ctx: &Context,
    ns: &str,
    name: &str,
    status: &ImageRepositoryStatus,
) -> Result<(), Error> {
    let api: Api<ImageRepository> = Api::namespaced(ctx.client.clone(), ns);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// A registry client with the repository's credentials and CA.
pub(crate) async fn client_for(
    repo: &ImageRepository,
    ctx: &Context,
    ns: &str,
    access: &ValidAccess,
) -> Result<RegistryClient, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let credentials = match &repo.spec.access.secret_ref {
        None => Credentials::Anonymous,
        Some(r) => {
            let data = secret_value(&secrets, &r.name, ".dockerconfigjson").await?;
            credentials_from_dockerconfigjson(&data, &access.image.registry, &r.name)?
        }
    };
    let ca_pem = match &repo.spec.access.cert_secret_ref {
        None => None,
        Some(r) => Some(secret_value(&secrets, &r.name, r.key_or_default()).await?),
    };
    let options = ClientOptions {
        credentials,
        insecure: access.insecure,
        ca_pem,
        budget: ctx.state.budget(&access.image.registry),
        metrics: Some(ctx.metrics.scan.clone()),
        read_timeout: Duration::from_secs(30),
        ..ClientOptions::default()
    };
    Ok(RegistryClient::new(access.image.clone(), options)?)
}

/// One key of a Secret; a missing Secret or key is an `InvalidSecret` scan error (the message
/// names the Secret and key, never a value).
async fn secret_value(api: &Api<Secret>, name: &str, key: &str) -> Result<Vec<u8>, Error> {
    let invalid = |reason: String| {
        Error::Scan(ScanError::InvalidSecret {
            secret: name.to_owned(),
            reason,
        })
    };
    let secret = match api.get_opt(name).await? {
        Some(secret) => secret,
        None => return Err(invalid("it does not exist".to_owned())),
    };
    secret
        .data
        .and_then(|mut d| d.remove(key))
        .map(|v| v.0)
        .ok_or_else(|| invalid(format!("it has no key {key:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_tags_put_the_highest_versions_first() {
        let tags: Vec<String> = ["1.4.2", "1.10.0", "latest", "1.4.3", "v2.0.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            latest(&tags),
            ["v2.0.0", "1.10.0", "1.4.3", "1.4.2", "latest"]
        );
    }
}
