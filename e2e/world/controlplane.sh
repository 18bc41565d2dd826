#!/usr/bin/env bash
# The world's Kubernetes: etcd, kube-apiserver (TLS, service-account signing keys), kube-controller-
# manager and kube-scheduler on loopback, with kwok playing the kubelets of two fake nodes.
# Usage: controlplane.sh up|down
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
. "$here/versions.sh"

ETCD_PORT=23790
ETCD_PEER_PORT=23800
APISERVER_PORT=16443
KWOK_PORT=10247
# Any tag whose last number is 13 (app:1.4.13, app:v2.13-rc, app:13@sha256:...) crash-loops by default.
DEFAULT_CRASH_PATTERN=':([A-Za-z0-9_.-]*[A-Za-z_.-])?13[A-Za-z_.-]*(@sha256:[0-9a-f]+)?$'
CRASH_PATTERN="${SLUICE_CRASH_PATTERN:-$DEFAULT_CRASH_PATTERN}"
pki="$WORLD_DIR/pki"
kubeconfig="$WORLD_DIR/kubeconfig"

write_kubeconfig() {
  local user="$1" out="$2"
  cat > "$out" <<KC
apiVersion: v1
kind: Config
clusters:
- name: sluice-world
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority: $pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $pki/$user.crt
    client-key: $pki/$user.key
contexts:
- name: sluice-world
  context: {cluster: sluice-world, user: $user}
current-context: sluice-world
KC
}

make_pki() {
  ensure_ca
  issue_cert apiserver "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
  issue_cert admin "" clientAuth "/O=system:masters/CN=world-admin"
  issue_cert controller-manager "" clientAuth "/CN=system:kube-controller-manager"
  issue_cert scheduler "" clientAuth "/CN=system:kube-scheduler"
  issue_cert kwok "" clientAuth "/O=system:masters/CN=kwok"
  [ -f "$pki/sa.key" ] || {
    openssl genrsa -out "$pki/sa.key" 2048 >/dev/null 2>&1
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" >/dev/null 2>&1
  }
  write_kubeconfig admin "$kubeconfig"
  write_kubeconfig controller-manager "$WORLD_DIR/controller-manager.kubeconfig"
  write_kubeconfig scheduler "$WORLD_DIR/scheduler.kubeconfig"
  write_kubeconfig kwok "$WORLD_DIR/kwok.kubeconfig"
}

# The jq expression kwok evaluates on a pod: true when any container image matches the pattern.
kwok_stages() {
  python3 - "$CRASH_PATTERN" "$here/kwok/stages.yaml.in" <<'PY'
import json, sys
pattern, template = sys.argv[1], open(sys.argv[2]).read()
expr = '[ (.spec.containers // [])[] | .image | test(%s) ] | any' % json.dumps(pattern)
print(template.replace("'@CRASH@'", "'" + expr.replace("'", "''") + "'"))
PY
}

api_ready() {
  curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$APISERVER_PORT/readyz" >/dev/null
}

up() {
  for b in "$ETCD_BIN/etcd" "$KUBE_BIN/kube-apiserver" "$KWOK_BIN/kwok"; do
    [ -x "$b" ] || die "$b is missing: run e2e/world/build.sh"
  done
  mkdir -p "$WORLD_DIR/etcd"
  make_pki

  start_daemon etcd "$ETCD_BIN/etcd" --name world --data-dir "$WORLD_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "world=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn \
    --quota-backend-bytes 4294967296
  wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  start_daemon kube-apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range 10.96.0.0/16 \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --endpoint-reconciler-type none --profiling=false --v=1
  wait_for kube-apiserver 90 api_ready

  start_daemon kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$WORLD_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$WORLD_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$WORLD_DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true --cluster-signing-cert-file "$pki/ca.crt" \
    --cluster-signing-key-file "$pki/ca.key" --controllers '*,-nodeipam,-cloud-node-lifecycle' \
    --concurrent-deployment-syncs 10 --concurrent-replicaset-syncs 10 --v=1

  start_daemon kube-scheduler "$KUBE_BIN/kube-scheduler" \
    --kubeconfig "$WORLD_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig "$WORLD_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig "$WORLD_DIR/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false --v=1

  kwok_stages > "$WORLD_DIR/kwok-stages.yaml"
  start_daemon kwok "$KWOK_BIN/kwok" --kubeconfig "$WORLD_DIR/kwok.kubeconfig" \
    --config "$WORLD_DIR/kwok-stages.yaml" --manage-all-nodes=true \
    --node-lease-duration-seconds 40 --cidr 10.244.0.0/16 --node-ip 10.0.0.1 \
    --server-address "127.0.0.1:$KWOK_PORT"

  "$KUBE_BIN/kubectl" --kubeconfig "$kubeconfig" apply --server-side --field-manager world \
    -f "$here/kwok/nodes.yaml" >/dev/null
  wait_for "the nodes to be Ready" 60 nodes_ready
  wait_for "the default ServiceAccount" 60 "$KUBE_BIN/kubectl" --kubeconfig "$kubeconfig" get serviceaccount default -n default

  publish controlplane <<ENV
export KUBECONFIG=$kubeconfig
export SLUICE_KUBE_APISERVER=https://127.0.0.1:$APISERVER_PORT
export SLUICE_CRASH_PATTERN='${CRASH_PATTERN//\'/\'\\\'\'}'
export PATH=$KUBE_BIN:$HELM_BIN:\$PATH
ENV
}

nodes_ready() {
  local n
  n=$("$KUBE_BIN/kubectl" --kubeconfig "$kubeconfig" get nodes \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)
  [ "$n" -ge 2 ]
}

down() {
  for d in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_daemon "$d"; done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: controlplane.sh up|down" ;;
esac
