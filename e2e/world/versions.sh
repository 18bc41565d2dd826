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
WORLD_CACHE="${SLUICE_WORLD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/world}"
KUBE_BIN="$WORLD_CACHE/kubernetes-$KUBE_VERSION"
ETCD_BIN="$WORLD_CACHE/etcd-$ETCD_VERSION"
KWOK_BIN="$WORLD_CACHE/kwok-$KWOK_VERSION"
DISTRIBUTION_BIN="$WORLD_CACHE/distribution-$DISTRIBUTION_VERSION"
GITEA_BIN="$WORLD_CACHE/gitea-$GITEA_VERSION"
HELM_BIN="$WORLD_CACHE/helm-$HELM_VERSION"
