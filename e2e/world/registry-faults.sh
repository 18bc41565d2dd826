#!/usr/bin/env bash
# Registries that misbehave, for the tests of the Config Updater's error reporting: an nginx of its
# own in front of the world's plain registry (127.0.0.1:15000), with real nginx modules doing the
# misbehaving.
#   rate limited  http://127.0.0.1:15429  limit_req: one request per 30 s (limit_req_status 429)
#   bad gateway   http://127.0.0.1:15502  proxies to 127.0.0.1:15599, where nothing listens (502)
#                                         until a test puts something there (the registry is back)
# Usage: registry-faults.sh up|down. `up` starts only this nginx (the other parts are left alone)
# and publishes SLUICE_REGISTRY_RATE_LIMITED, SLUICE_REGISTRY_BAD_GATEWAY and
# SLUICE_REGISTRY_BAD_GATEWAY_UPSTREAM; it adds them to an existing env.sh too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
exec 4>&2

F="$WORLD_DIR/registry-faults"
REGISTRY_ADDR=127.0.0.1:15000
LIMITED_ADDR=127.0.0.1:15429
GATEWAY_ADDR=127.0.0.1:15502
DEAD_UPSTREAM=127.0.0.1:15599

port_taken() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

write_conf() {
  mkdir -p "$F/tmp"
  cat > "$F/nginx.conf" <<NGINX
# Written by e2e/world/registry-faults.sh: misbehaving fronts of the plain registry.
daemon off;
master_process on;
worker_processes 1;
user root;
pid $F/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log $WORLD_DIR/logs/registry-faults-access.log;
  client_body_temp_path $F/tmp/body;
  fastcgi_temp_path $F/tmp/fastcgi;
  proxy_temp_path $F/tmp/proxy;
  uwsgi_temp_path $F/tmp/uwsgi;
  scgi_temp_path $F/tmp/scgi;
  client_max_body_size 0;
  proxy_http_version 1.1;
  # One request per 30 s from anyone: a registry's rate limit, as Docker Hub's or GHCR's.
  limit_req_zone \$server_port zone=registry:1m rate=2r/m;
  limit_req_status 429;
  server {
    listen $LIMITED_ADDR;
    location / {
      limit_req zone=registry;
      proxy_pass http://$REGISTRY_ADDR;
    }
  }
  # A front whose backend is down: nginx answers 502 Bad Gateway.
  upstream dead {
    server $DEAD_UPSTREAM max_fails=0;
  }
  server {
    listen $GATEWAY_ADDR;
    location / {
      proxy_pass http://dead;
      proxy_connect_timeout 2s;
    }
  }
}
NGINX
}

answers() { curl -s -o /dev/null "http://$1/v2/" ; }

up() {
  apt_ensure nginx nginx
  apt_ensure curl curl
  write_conf
  if ! daemon_running registry-faults-nginx; then
    for addr in "$LIMITED_ADDR" "$GATEWAY_ADDR"; do
      port_taken "$addr" && die "$addr is taken by another process; registry-faults-nginx cannot start"
    done
  fi
  /usr/sbin/nginx -e stderr -p "$F" -c "$F/nginx.conf" -t -q || die "bad nginx config $F/nginx.conf"
  start_daemon registry-faults-nginx /usr/sbin/nginx -e stderr -p "$F" -c "$F/nginx.conf"
  wait_for "the rate-limited registry on $LIMITED_ADDR" 15 answers "$LIMITED_ADDR"
  wait_for "the bad gateway on $GATEWAY_ADDR" 15 answers "$GATEWAY_ADDR"
  publish registry-faults <<ENV
export SLUICE_REGISTRY_RATE_LIMITED=$LIMITED_ADDR
export SLUICE_REGISTRY_BAD_GATEWAY=$GATEWAY_ADDR
export SLUICE_REGISTRY_BAD_GATEWAY_UPSTREAM=$DEAD_UPSTREAM
ENV
  # A world already up gets the new addresses in its env.sh (written by e2e/env up).
  if [ -f "$WORLD_DIR/env.sh" ] && ! grep -q SLUICE_REGISTRY_RATE_LIMITED "$WORLD_DIR/env.sh"; then
    cat "$WORLD_DIR/env.d/registry-faults.sh" >> "$WORLD_DIR/env.sh"
  fi
  log "registry faults up: 429 on $LIMITED_ADDR, 502 on $GATEWAY_ADDR"
}

down() {
  stop_daemon registry-faults-nginx
  log "registry faults down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
