# Pinned versions of the local world. Sourced by the e2e/world scripts.
KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
# A second registry implementation, for paged tag lists (Debian's distribution 2.8 ignores ?n=).
DISTRIBUTION_VERSION=v3.1.2
# Charts: `helm template`, which the synchronizer runs for a chart (as Argo CD does).
HELM_VERSION=v4.3.2
# The forge: pull requests, commit statuses and real push/pull_request webhooks.
GITEA_VERSION=v1.27.3
# Flux, an optional part for the side-by-side bench (e2e/env up --with flux): the newest releases
# whose go.mod this Go builds (v1.10.x says go 1.27). notification-controller (the Receiver, Flux's
# push trigger): the newest v1.9 the proxy serves. source-controller v1.9.6 requires
# github.com/fluxcd/pkg/artifact v0.18.3, which the proxy here refuses (403); v0.18.1 replaces it.
FLUX_SOURCE_VERSION=v1.9.6
FLUX_KUSTOMIZE_VERSION=v1.9.6
FLUX_NOTIFICATION_VERSION=v1.9.3
FLUX_SOURCE_ARTIFACT_VERSION=v0.18.1
WORLD_CACHE="${SLUICE_WORLD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/world}"
KUBE_BIN="$WORLD_CACHE/kubernetes-$KUBE_VERSION"
ETCD_BIN="$WORLD_CACHE/etcd-$ETCD_VERSION"
KWOK_BIN="$WORLD_CACHE/kwok-$KWOK_VERSION"
DISTRIBUTION_BIN="$WORLD_CACHE/distribution-$DISTRIBUTION_VERSION"
GITEA_BIN="$WORLD_CACHE/gitea-$GITEA_VERSION"
HELM_BIN="$WORLD_CACHE/helm-$HELM_VERSION"
FLUX_SOURCE_BIN="$WORLD_CACHE/flux-source-controller-$FLUX_SOURCE_VERSION"
FLUX_KUSTOMIZE_BIN="$WORLD_CACHE/flux-kustomize-controller-$FLUX_KUSTOMIZE_VERSION"
FLUX_NOTIFICATION_BIN="$WORLD_CACHE/flux-notification-controller-$FLUX_NOTIFICATION_VERSION"
