# Shared helpers for the e2e/world scripts. Sourced, never run.
# Conventions:
#   $WORLD_DIR            state of one running world (default /tmp/sluice-world)
#   $WORLD_DIR/pids/N.pid the pid of daemon N, started by start_daemon; `down` kills exactly these
#   $WORLD_DIR/logs/N.log its output
#   $WORLD_DIR/env.d/*.sh exports published by each part; `up` joins them into $WORLD_DIR/env.sh
#   $WORLD_DIR/pki/ca.crt the world's CA; issue_cert signs server certificates with it
WORLD_DIR="${SLUICE_WORLD_DIR:-/tmp/sluice-world}"
export WORLD_DIR

log() { printf '[world] %s\n' "$*" >&2; }
die() { printf '[world] error: %s\n' "$*" >&2; exit 1; }

# apt_ensure CMD PKG...: installs the Debian packages when CMD is missing.
apt_ensure() {
  local cmd="$1"; shift
  command -v "$cmd" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$cmd" ] && return 0
  log "installing $* (apt-get)"
  if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# start_daemon NAME CMD...: starts CMD in the background in its own session, records its pid.
start_daemon() {
  local name="$1"; shift
  mkdir -p "$WORLD_DIR/pids" "$WORLD_DIR/logs"
  if daemon_running "$name"; then log "$name already running"; return 0; fi
  # The daemon keeps no descriptor of ours beyond 0-2: an inherited pipe would keep a caller's
  # `e2e/env up | tail` waiting for as long as the world runs.
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
    done
    exec setsid "$@"
  ) >>"$WORLD_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$WORLD_DIR/pids/$name.pid"
}

daemon_running() {
  local f="$WORLD_DIR/pids/$1.pid"
  [ -f "$f" ] && pid_alive "$(cat "$f")"
}

# pid_alive PID: the process exists and is not a zombie waiting for its (slow) reaper.
pid_alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# stop_daemon NAME: TERM the recorded pid (and its process group), then KILL after 10 s.
stop_daemon() {
  local f="$WORLD_DIR/pids/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if pid_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD every 0.2 s until it succeeds.
wait_for() {
  local what="$1" secs="$2" i; shift 2
  for i in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out after ${secs}s waiting for $what (logs in $WORLD_DIR/logs)"
}

# ensure_ca: the world's own CA, created once per world.
ensure_ca() {
  local d="$WORLD_DIR/pki"
  mkdir -p "$d"
  [ -f "$d/ca.crt" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 365 \
    -subj "/CN=sluice-world-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
}

# issue_cert NAME SANS [EXT_KEY_USAGE] [SUBJ]: writes $WORLD_DIR/pki/NAME.{crt,key} signed by the CA.
# SANS like "DNS:localhost,IP:127.0.0.1"; usage defaults to serverAuth.
issue_cert() {
  local name="$1" sans="$2" eku="${3:-serverAuth}" subj="${4:-/CN=$1}" d="$WORLD_DIR/pki"
  ensure_ca
  [ -f "$d/$name.crt" ] && return 0
  openssl req -newkey rsa:2048 -nodes -keyout "$d/$name.key" -out "$d/$name.csr" -subj "$subj" >/dev/null 2>&1
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
    "$eku" "${sans:+subjectAltName=$sans}" > "$d/$name.ext"
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/$name.crt" -days 365 -extfile "$d/$name.ext" >/dev/null 2>&1
  rm -f "$d/$name.csr" "$d/$name.ext"
}

# publish PART: reads `export K=V` lines on stdin into $WORLD_DIR/env.d/PART.sh
publish() { mkdir -p "$WORLD_DIR/env.d"; cat > "$WORLD_DIR/env.d/$1.sh"; }
