#!/usr/bin/env bash
# The world's OCI registries on loopback: two instances of distribution 2.8 (Debian's docker-registry)
# and one of distribution 3 (built from Go modules), whose tag lists page (`?n=`, `Link: rel="next"`)
# as GHCR's and Quay's do; 2.8 ignores `n` and returns every tag at once.
#   plain  http://127.0.0.1:15000   anonymous
#   tls    https://127.0.0.1:15443  world-CA certificate, htpasswd basic auth (user sluice)
#   paged  http://127.0.0.1:15002   anonymous, distribution 3
# All send notifications (push/delete events, with a bearer token) to $SLUICE_REGISTRY_NOTIFY_URL.
# Usage: registry.sh up|down
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
. "$here/versions.sh"
exec 4>&2  # the real stderr, for failures reported from inside wait_for (which silences its command)

REG_DIR="$WORLD_DIR/registry"
PLAIN_ADDR=127.0.0.1:15000
TLS_ADDR=127.0.0.1:15443
PAGED_ADDR=127.0.0.1:15002
REG_USER=sluice
NOTIFY_URL="${SLUICE_REGISTRY_NOTIFY_URL:-http://127.0.0.1:19090/webhook/distribution}"

# secret FILE: a random hex secret kept in FILE, made once per world so a second `up` reuses it.
secret() {
  [ -s "$1" ] || (umask 077; openssl rand -hex 16 > "$1")
  cat "$1"
}

# port_taken ADDR: true when something already listens on host:port.
port_taken() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# write_config NAME ADDR TLS(0|1): $REG_DIR/NAME/config.yml, storage in $REG_DIR/NAME/storage.
# A running instance whose config changed (another notify URL) is stopped, for start to run it anew.
write_config() {
  local name="$1" addr="$2" tls="$3" d="$REG_DIR/$1"
  mkdir -p "$d/storage"
  [ -f "$d/config.yml" ] && cp "$d/config.yml" "$d/config.yml.old"
  {
    cat <<YAML
version: 0.1
log:
  level: info
  formatter: text
  fields:
    instance: $name
storage:
  filesystem:
    rootdirectory: $d/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $addr
  secret: $(secret "$REG_DIR/http-secret")
  headers:
    X-Content-Type-Options: [nosniff]
YAML
    if [ "$tls" = 1 ]; then
      cat <<YAML
  tls:
    certificate: $WORLD_DIR/pki/registry.crt
    key: $WORLD_DIR/pki/registry.key
auth:
  htpasswd:
    realm: sluice-world
    path: $REG_DIR/htpasswd
YAML
    fi
    # Small threshold/backoff: a listener that starts after the registry gets queued events within ~1 s.
    cat <<YAML
notifications:
  events:
    includereferences: true
  endpoints:
    - name: sluice
      url: $NOTIFY_URL
      headers:
        Authorization: [Bearer $TOKEN]
      timeout: 2s
      threshold: 3
      backoff: 1s
      ignoredmediatypes:
        - application/octet-stream
      ignore:
        actions:
          - pull
YAML
  } > "$d/config.yml"
  if [ -f "$d/config.yml.old" ] && ! cmp -s "$d/config.yml" "$d/config.yml.old" && daemon_running "registry-$name"; then
    log "registry-$name config changed: restarting it"
    stop_daemon "registry-$name"
  fi
  rm -f "$d/config.yml.old"
}

# start NAME ADDR SCHEME [BINARY]: runs the instance NAME and waits for its /v2/ endpoint.
start() {
  local name="$1" addr="$2" scheme="$3" binary="${4:-/usr/bin/docker-registry}"
  if ! daemon_running "registry-$name" && port_taken "$addr"; then
    die "$addr is taken by another process; registry-$name cannot start"
  fi
  start_daemon "registry-$name" "$binary" serve "$REG_DIR/$name/config.yml"
  # 200 (anonymous) or 401 (auth required) both mean it serves; --cacert proves the certificate too.
  wait_for "registry-$name on $addr" 30 alive "$name" "$scheme://$addr/v2/"
}

# alive NAME URL: the daemon still runs (else fail at once, not after the timeout) and URL answers.
alive() {
  daemon_running "registry-$1" || die "registry-$1 exited (see $WORLD_DIR/logs/registry-$1.log)" 2>&4
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORLD_DIR/pki/ca.crt" "$2") || return 1
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

up() {
  apt_ensure docker-registry docker-registry
  apt_ensure skopeo skopeo
  apt_ensure htpasswd apache2-utils
  mkdir -p "$REG_DIR"
  issue_cert registry "DNS:localhost,IP:127.0.0.1"
  TOKEN=$(secret "$REG_DIR/notify-token")
  local password
  password=$(secret "$REG_DIR/password")
  [ -s "$REG_DIR/htpasswd" ] || htpasswd -Bbc "$REG_DIR/htpasswd" "$REG_USER" "$password" 2>/dev/null
  # skopeo --dest-cert-dir / containers-style certs.d: a directory holding the CA as ca.crt.
  mkdir -p "$REG_DIR/certs.d"
  cp "$WORLD_DIR/pki/ca.crt" "$REG_DIR/certs.d/ca.crt"

  write_config plain "$PLAIN_ADDR" 0
  write_config tls "$TLS_ADDR" 1
  write_config paged "$PAGED_ADDR" 0
  [ -x "$DISTRIBUTION_BIN/registry" ] || die "$DISTRIBUTION_BIN/registry is missing: run e2e/world/build.sh"
  start plain "$PLAIN_ADDR" http
  start tls "$TLS_ADDR" https
  start paged "$PAGED_ADDR" http "$DISTRIBUTION_BIN/registry"

  publish registry <<EOF
export SLUICE_REGISTRY=$PLAIN_ADDR
export SLUICE_REGISTRY_TLS=$TLS_ADDR
export SLUICE_REGISTRY_PAGED=$PAGED_ADDR
export SLUICE_REGISTRY_USER=$REG_USER
export SLUICE_REGISTRY_PASSWORD=$password
export SLUICE_REGISTRY_NOTIFY_URL=$NOTIFY_URL
export SLUICE_REGISTRY_NOTIFY_TOKEN=$TOKEN
export SLUICE_REGISTRY_CERT_DIR=$REG_DIR/certs.d
export SLUICE_CA_FILE=$WORLD_DIR/pki/ca.crt
EOF
  log "registry up: http://$PLAIN_ADDR (anonymous), https://$TLS_ADDR (user $REG_USER), http://$PAGED_ADDR (paged, anonymous)"
}

down() {
  # In parallel: each stop waits for its pid to be reaped, which takes PID 1 a moment here.
  stop_daemon registry-plain & stop_daemon registry-tls & stop_daemon registry-paged &
  wait
  log "registry down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
