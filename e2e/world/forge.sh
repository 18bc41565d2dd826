#!/usr/bin/env bash
# The world's forge: Gitea (built from Go modules by build.sh) on loopback, with a real pull-request
# API, commit statuses and real, HMAC-signed webhook deliveries.
#   API   http://127.0.0.1:13000/api/v1    user sluice (admin), password and API token in env.sh
#   git   http://127.0.0.1:13000/<owner>/<repo>.git  (basic auth: user and password, or the token)
# Everything (app.ini, SQLite database, repositories, queues) lives in $WORLD_DIR/forge.
# Usage: forge.sh up|down
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
. "$here/versions.sh"
exec 4>&2  # the real stderr, for failures reported from inside wait_for

F="$WORLD_DIR/forge"
ADDR=127.0.0.1:13000
USER_NAME=sluice
GITEA="$GITEA_BIN/gitea"

secret() {
  [ -s "$1" ] || (umask 077; openssl rand -hex 20 > "$1")
  cat "$1"
}

# gitea ARGS...: the gitea command line against the world's config (as root, which it refuses
# unless told this is on purpose).
gitea() {
  GITEA_WORK_DIR="$F" GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true \
    "$GITEA" --config "$F/app.ini" --work-path "$F" "$@"
}

write_config() {
  # Gitea writes generated secrets back into app.ini: written once per world, then left to it.
  [ -f "$F/app.ini" ] && return 0
  cat > "$F/app.ini" <<INI
; Written by e2e/world/forge.sh: the local world's forge.
APP_NAME = sluice-world forge
RUN_USER = $(id -un)
RUN_MODE = prod
WORK_PATH = $F
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = ${ADDR%:*}
HTTP_PORT = ${ADDR##*:}
DOMAIN = ${ADDR%:*}
ROOT_URL = http://$ADDR/
LOCAL_ROOT_URL = http://$ADDR/
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
STATIC_ROOT_PATH = $GITEA_BIN/static
APP_DATA_PATH = $F/data

[database]
DB_TYPE = sqlite3
PATH = $F/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = $F/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = $(secret "$F/secret-key")
INTERNAL_TOKEN = $(secret "$F/internal-token")
; The daemons' webhook receivers listen on loopback.
ALLOWED_HOST_LIST = loopback

[service]
DISABLE_REGISTRATION = true

[webhook]
DELIVER_TIMEOUT = 5
ALLOWED_HOST_LIST = loopback

; Webhooks and pull-request checks go through in-memory queues: delivered as soon as a worker
; is free, not after a disk queue's batching.
[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[mailer]
ENABLED = false

[actions]
ENABLED = false

[oauth2]
ENABLED = false

[cron.update_checker]
ENABLED = false

[log]
MODE = console
LEVEL = Warn
INI
}

api_ok() { curl -sf -o /dev/null "http://$ADDR/api/v1/version"; }

# ensure_user: the admin user and an API token, made once per world.
ensure_user() {
  local password
  password=$(secret "$F/password")
  if ! gitea admin user list 2>/dev/null | awk '{print $2}' | grep -qx "$USER_NAME"; then
    gitea admin user create --admin --username "$USER_NAME" --password "$password" \
      --email "$USER_NAME@sluice.dev" --must-change-password=false >/dev/null
  fi
  if [ ! -s "$F/token" ]; then
    (umask 077
     curl -sf -u "$USER_NAME:$password" -H 'Content-Type: application/json' \
       -d "{\"name\":\"world-$(date +%s)\",\"scopes\":[\"all\"]}" \
       "http://$ADDR/api/v1/users/$USER_NAME/tokens" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sha1"])' > "$F/token.tmp")
    mv "$F/token.tmp" "$F/token"
  fi
}

up() {
  [ -x "$GITEA" ] || die "gitea is not built (run e2e/world/build.sh)"
  mkdir -p "$F/data" "$F/repos"
  write_config
  gitea migrate >>"$WORLD_DIR/logs/forge-migrate.log" 2>&1 || die "gitea migrate failed (see $WORLD_DIR/logs/forge-migrate.log)"
  if ! daemon_running forge && (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}") 2>/dev/null; then
    die "$ADDR is taken by another process; the forge cannot start"
  fi
  start_daemon forge env GITEA_WORK_DIR="$F" GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true \
    "$GITEA" web --config "$F/app.ini" --work-path "$F"
  wait_for "the forge on $ADDR" 60 alive_ok
  ensure_user
  publish forge <<EOF
export SLUICE_FORGE_URL=http://$ADDR
export SLUICE_FORGE_API=http://$ADDR/api/v1
export SLUICE_FORGE_USER=$USER_NAME
export SLUICE_FORGE_PASSWORD=$(cat "$F/password")
export SLUICE_FORGE_TOKEN=$(cat "$F/token")
EOF
  log "forge up: http://$ADDR (gitea $GITEA_VERSION, user $USER_NAME)"
}

alive_ok() {
  daemon_running forge || die "the forge exited (see $WORLD_DIR/logs/forge.log)" 2>&4
  api_ok
}

down() {
  stop_daemon forge
  log "forge down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
