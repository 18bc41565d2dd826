#!/usr/bin/env bash
# An optional part of the world, for the side-by-side bench only (`e2e/env up --with flux`; no test
# needs it): Flux's source-controller, kustomize-controller and notification-controller (its
# Receiver is Flux's push trigger), built from Go modules and run as processes on loopback against
# the world's apiserver, with their CRDs applied, as Flux's own install runs them (one replica
# each, default flags and intervals; leader election off, as there is one of each).
#   artifacts   http://127.0.0.1:19090  source-controller's storage (kustomize-controller fetches)
#   receiver    http://127.0.0.1:19292  notification-controller's webhook receiver (/hook/...)
#   metrics     http://127.0.0.1:19080 (source), :19081 (kustomize), :19082 (notification)
#   apiserver   https://127.0.0.1:19443 a kube-apiserver of Flux's own over the world's etcd (the
#               world's binary and flags, another port): the same cluster, but its
#               apiserver_request_total counts Flux's requests alone, as the bench's own apiserver
#               does for Sluice's daemon
# State (artifact storage, the controllers' kubeconfig) lives in $WORLD_DIR/flux; binaries and
# CRDs in the world cache.
#
# How they are built: `go install module@version` refuses these modules (their go.mod has replace
# lines) and their main imports the module's internal/ packages, so each is built from a writable
# copy of the module source the proxy serves. The `.../api => ./api` replace points at a nested
# module the module zip does not hold: it is dropped, so the published api module of the version
# go.mod requires is used. source-controller requires github.com/fluxcd/pkg/artifact at a version
# the proxy may not serve; FLUX_SOURCE_ARTIFACT_VERSION (versions.sh) replaces it when set.
# Usage: flux.sh build|up|down
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
. "$here/versions.sh"
exec 4>&2  # the real stderr, for failures reported from inside wait_for

X="$WORLD_DIR/flux"
NS=flux-system
STORAGE_ADDR=127.0.0.1:19090
RECEIVER_ADDR=127.0.0.1:19292
EVENTS_ADDR=127.0.0.1:19093
SOURCE_METRICS=127.0.0.1:19080
KUSTOMIZE_METRICS=127.0.0.1:19081
NOTIFICATION_METRICS=127.0.0.1:19082
SOURCE_HEALTH=127.0.0.1:19440
KUSTOMIZE_HEALTH=127.0.0.1:19441
NOTIFICATION_HEALTH=127.0.0.1:19442
APISERVER_PORT=19443

# build_controller NAME VERSION BIN_DIR: BIN_DIR/NAME and BIN_DIR/crds/*.yaml, unless cached.
build_controller() {
  local name="$1" version="$2" out="$3"
  [ -x "$out/$name" ] && [ -d "$out/crds" ] && { log "$name $version cached in $out"; return; }
  (
    export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -trimpath -mod=mod" CGO_ENABLED=0
    local src="$WORLD_CACHE/src/$name-$version" dir
    dir=$(go mod download -json "github.com/fluxcd/$name@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    [ -n "$dir" ] || die "the Go proxy did not serve github.com/fluxcd/$name@$version"
    rm -rf "$src" && mkdir -p "$(dirname "$src")" "$out"
    cp -r "$dir" "$src" && chmod -R u+w "$src"
    cd "$src"
    go mod edit -dropreplace "github.com/fluxcd/$name/api"
    if [ "$name" = source-controller ] && [ -n "${FLUX_SOURCE_ARTIFACT_VERSION:-}" ]; then
      go mod edit -replace "github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@$FLUX_SOURCE_ARTIFACT_VERSION"
    fi
    log "building $name $version"
    local start=$SECONDS
    go build -ldflags "-s -w" -o "$out/$name.tmp" . && mv "$out/$name.tmp" "$out/$name"
    rm -rf "$out/crds" && cp -r config/crd/bases "$out/crds" && chmod -R u+w "$out/crds"
    log "$name $version built in $((SECONDS - start)) s"
  )
}

build() {
  build_controller source-controller "$FLUX_SOURCE_VERSION" "$FLUX_SOURCE_BIN"
  build_controller kustomize-controller "$FLUX_KUSTOMIZE_VERSION" "$FLUX_KUSTOMIZE_BIN"
  build_controller notification-controller "$FLUX_NOTIFICATION_VERSION" "$FLUX_NOTIFICATION_BIN"
}

# need_port NAME ADDR: nobody else listens on ADDR (unless it is our NAME already).
need_port() {
  if ! daemon_running "$1" && (exec 3<>"/dev/tcp/${2%:*}/${2##*:}") 2>/dev/null; then
    die "$2 is taken by another process; $1 cannot start"
  fi
}

healthy() {
  daemon_running "$1" || die "$1 exited (see $WORLD_DIR/logs/$1.log)" 2>&4
  curl -sf -o /dev/null "http://$2/readyz"
}

# start_apiserver: the world's kube-apiserver command line (from its pid), on APISERVER_PORT.
start_apiserver() {
  local pid args=() out=() skip=0 a
  pid=$(cat "$WORLD_DIR/pids/kube-apiserver.pid")
  mapfile -d '' args < "/proc/$pid/cmdline"
  for a in "${args[@]:1}"; do
    if [ "$skip" = 1 ]; then skip=0; continue; fi
    case "$a" in
      --secure-port) skip=1 ;;
      --secure-port=*) ;;
      *) out+=("$a") ;;
    esac
  done
  need_port flux-kube-apiserver "127.0.0.1:$APISERVER_PORT"
  start_daemon flux-kube-apiserver "${args[0]}" "${out[@]}" "--secure-port=$APISERVER_PORT"
  sed "s#https://127.0.0.1:[0-9]*#https://127.0.0.1:$APISERVER_PORT#" "$WORLD_DIR/kubeconfig" > "$X/kubeconfig"
  wait_for "Flux's kube-apiserver on :$APISERVER_PORT" 120 apiserver_ready
}

apiserver_ready() {
  daemon_running flux-kube-apiserver || die "flux-kube-apiserver exited (see $WORLD_DIR/logs/flux-kube-apiserver.log)" 2>&4
  [ "$("$KUBE_BIN/kubectl" --kubeconfig "$X/kubeconfig" get --raw /readyz 2>/dev/null)" = ok ]
}

up() {
  [ -f "$WORLD_DIR/env.d/controlplane.sh" ] || die "the world's control plane is not up (e2e/env up)"
  daemon_running kube-apiserver || die "the world's kube-apiserver is not running"
  build
  mkdir -p "$X/storage"
  start_apiserver
  local kubeconfig="$X/kubeconfig"
  local kubectl="$KUBE_BIN/kubectl --kubeconfig $kubeconfig"
  $kubectl apply --server-side --force-conflicts -f "$FLUX_SOURCE_BIN/crds" -f "$FLUX_KUSTOMIZE_BIN/crds" \
    -f "$FLUX_NOTIFICATION_BIN/crds" >/dev/null
  $kubectl wait --for condition=Established --timeout 60s \
    crd/gitrepositories.source.toolkit.fluxcd.io crd/kustomizations.kustomize.toolkit.fluxcd.io \
    crd/receivers.notification.toolkit.fluxcd.io >/dev/null
  $kubectl get namespace "$NS" >/dev/null 2>&1 || $kubectl create namespace "$NS" >/dev/null

  need_port flux-source-controller "$STORAGE_ADDR"
  need_port flux-kustomize-controller "$KUSTOMIZE_METRICS"
  need_port flux-notification-controller "$RECEIVER_ADDR"
  # The flags Flux's install sets (watch all namespaces, log as JSON, the storage path and address),
  # with every listener on loopback; the rest, intervals included, are the controllers' defaults.
  local common=(--watch-all-namespaces=true --log-level=info --log-encoding=json --enable-leader-election=false)
  start_daemon flux-source-controller env KUBECONFIG="$kubeconfig" RUNTIME_NAMESPACE="$NS" TUF_ROOT="$X/tuf" \
    "$FLUX_SOURCE_BIN/source-controller" "${common[@]}" \
    --storage-path="$X/storage" --storage-addr="$STORAGE_ADDR" --storage-adv-addr="$STORAGE_ADDR" \
    --metrics-addr="$SOURCE_METRICS" --health-addr="$SOURCE_HEALTH" --events-addr="http://$EVENTS_ADDR/"
  start_daemon flux-kustomize-controller env KUBECONFIG="$kubeconfig" RUNTIME_NAMESPACE="$NS" \
    "$FLUX_KUSTOMIZE_BIN/kustomize-controller" "${common[@]}" \
    --metrics-addr="$KUSTOMIZE_METRICS" --health-addr="$KUSTOMIZE_HEALTH" --events-addr="http://$EVENTS_ADDR/"
  start_daemon flux-notification-controller env KUBECONFIG="$kubeconfig" RUNTIME_NAMESPACE="$NS" \
    "$FLUX_NOTIFICATION_BIN/notification-controller" "${common[@]}" \
    --receiverAddr="$RECEIVER_ADDR" --events-addr="$EVENTS_ADDR" \
    --metrics-addr="$NOTIFICATION_METRICS" --health-addr="$NOTIFICATION_HEALTH"
  wait_for "source-controller" 60 healthy flux-source-controller "$SOURCE_HEALTH"
  wait_for "kustomize-controller" 60 healthy flux-kustomize-controller "$KUSTOMIZE_HEALTH"
  wait_for "notification-controller" 60 healthy flux-notification-controller "$NOTIFICATION_HEALTH"
  publish flux <<EOF
export SLUICE_FLUX_NAMESPACE=$NS
export SLUICE_FLUX_APISERVER=https://127.0.0.1:$APISERVER_PORT
export SLUICE_FLUX_RECEIVER_URL=http://$RECEIVER_ADDR
export SLUICE_FLUX_STORAGE_URL=http://$STORAGE_ADDR
export SLUICE_FLUX_VERSIONS="source-controller $FLUX_SOURCE_VERSION, kustomize-controller $FLUX_KUSTOMIZE_VERSION, notification-controller $FLUX_NOTIFICATION_VERSION"
EOF
  # A world that is already up gets the part into its env file too.
  if [ -f "$WORLD_DIR/env.sh" ] && ! grep -q SLUICE_FLUX_NAMESPACE "$WORLD_DIR/env.sh"; then
    cat "$WORLD_DIR/env.d/flux.sh" >> "$WORLD_DIR/env.sh"
  fi
  log "flux up: source-controller $FLUX_SOURCE_VERSION, kustomize-controller $FLUX_KUSTOMIZE_VERSION, notification-controller $FLUX_NOTIFICATION_VERSION"
}

down() {
  stop_daemon flux-notification-controller
  stop_daemon flux-kustomize-controller
  stop_daemon flux-source-controller
  stop_daemon flux-kube-apiserver
  rm -f "$WORLD_DIR/env.d/flux.sh"
  if [ -f "$WORLD_DIR/env.sh" ]; then
    sed -i '/SLUICE_FLUX_/d' "$WORLD_DIR/env.sh"
  fi
  log "flux down"
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 build|up|down" >&2; exit 2 ;;
esac
