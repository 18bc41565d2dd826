#!/usr/bin/env bash
# The world's git server, on loopback, serving the bare repos in $WORLD_DIR/git/repos (<name>.git):
#   smart HTTP   http://127.0.0.1:18080/<name>.git   nginx + fcgiwrap + git http-backend, basic auth
#   smart HTTPS  https://127.0.0.1:18443/<name>.git  same, world-CA certificate
#   SSH          ssh://root@127.0.0.1:12222<repos dir>/<name>.git  a private sshd, ed25519 key only
# Everything (configs, keys, pids, temp dirs) lives in $WORLD_DIR/git; logs in $WORLD_DIR/logs.
# Usage: gitserver.sh up|down
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/lib.sh"
exec 4>&2  # the real stderr, for failures reported from inside wait_for (which silences its command)

G="$WORLD_DIR/git"
REPOS="$G/repos"
HTTP_ADDR=127.0.0.1:18080
HTTPS_ADDR=127.0.0.1:18443
SSH_PORT=12222
GIT_USER=sluice
SSH_USER=root  # one uid for every transport: repos written over HTTP stay writable over SSH
HTTP_BACKEND=/usr/lib/git-core/git-http-backend

# secret FILE: a random hex secret kept in FILE, made once per world so a second `up` reuses it.
secret() {
  [ -s "$1" ] || (umask 077; openssl rand -hex 16 > "$1")
  cat "$1"
}

# port_taken ADDR: true when something already listens on host:port.
port_taken() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

# need_port DAEMON ADDR: fail early when ADDR is held by a process that is not our DAEMON.
need_port() {
  if ! daemon_running "$1" && port_taken "$2"; then die "$2 is taken by another process; $1 cannot start"; fi
}

# reap_orphans DAEMON WORD: when DAEMON's leader died (kill -9, crash), its workers live on in its
# process group, where stop_daemon no longer looks. End that group, if its members are ours (their
# command line has WORD), and forget the stale pid.
reap_orphans() {
  local f="$WORLD_DIR/pids/$1.pid" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  pid_alive "$pid" && return 0
  if ps -eo pgid=,args= | awk -v g="$pid" '$1 == g' | grep -q -- "$2"; then
    log "ending the orphaned workers of $1 (process group $pid)"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# alive DAEMON CMD...: the daemon still runs (else fail at once, not at the timeout) and CMD succeeds.
alive() {
  local d="$1"; shift
  daemon_running "$d" || die "$d exited (see $WORLD_DIR/logs/$d.log)" 2>&4
  "$@"
}

# http_ok URL: the server answers (401 without credentials is the expected answer).
http_ok() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORLD_DIR/pki/ca.crt" "$1") || return 1
  [ "$code" = 401 ]
}

# --- HTTP: fcgiwrap runs git http-backend for nginx, which does TLS and basic auth. ---

write_nginx_conf() {
  local n="$G/nginx"
  mkdir -p "$n/tmp"
  cat > "$n/nginx.conf" <<NGINX
# Written by e2e/world/gitserver.sh: git smart HTTP(S) for the local world.
daemon off;
master_process on;
worker_processes 2;
user root;
pid $n/nginx.pid;
error_log stderr warn;
events { worker_connections 512; }
http {
  access_log $WORLD_DIR/logs/git-http-access.log;
  client_body_temp_path $n/tmp/body;
  fastcgi_temp_path $n/tmp/fastcgi;
  proxy_temp_path $n/tmp/proxy;
  uwsgi_temp_path $n/tmp/uwsgi;
  scgi_temp_path $n/tmp/scgi;
  client_max_body_size 0;
  server {
    listen $HTTP_ADDR;
    listen $HTTPS_ADDR ssl;
    server_name localhost;
    ssl_certificate $WORLD_DIR/pki/gitserver.crt;
    ssl_certificate_key $WORLD_DIR/pki/gitserver.key;
    auth_basic "sluice-world git";
    auth_basic_user_file $G/htpasswd;
    # Helm chart repositories (index.yaml and packages), behind the same login: push-chart --http.
    location /charts/ {
      alias $G/charts/;
    }
    location / {
      fastcgi_pass unix:$G/fcgiwrap.sock;
      fastcgi_read_timeout 300s;
      fastcgi_param SCRIPT_FILENAME $HTTP_BACKEND;
      fastcgi_param GIT_PROJECT_ROOT $REPOS;
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      # An authenticated REMOTE_USER lets http-backend accept pushes into any repo, seeded or not.
      fastcgi_param REMOTE_USER \$remote_user;
      fastcgi_param PATH_INFO \$uri;
      fastcgi_param QUERY_STRING \$query_string;
      fastcgi_param REQUEST_METHOD \$request_method;
      fastcgi_param CONTENT_TYPE \$content_type;
      fastcgi_param CONTENT_LENGTH \$content_length;
      fastcgi_param REMOTE_ADDR \$remote_addr;
      fastcgi_param SERVER_PROTOCOL \$server_protocol;
      fastcgi_param SERVER_NAME \$server_name;
      fastcgi_param SERVER_PORT \$server_port;
      # Repos may be made by another uid (a test's own git init): trust them all.
      fastcgi_param GIT_CONFIG_COUNT 1;
      fastcgi_param GIT_CONFIG_KEY_0 safe.directory;
      fastcgi_param GIT_CONFIG_VALUE_0 *;
    }
  }
}
NGINX
}

http_up() {
  apt_ensure nginx nginx
  apt_ensure fcgiwrap fcgiwrap
  apt_ensure htpasswd apache2-utils
  issue_cert gitserver "DNS:localhost,IP:127.0.0.1"
  [ -s "$G/htpasswd" ] || htpasswd -Bbc "$G/htpasswd" "$GIT_USER" "$(secret "$G/password")" 2>/dev/null
  write_nginx_conf
  mkdir -p "$G/charts"
  reap_orphans git-fcgiwrap fcgiwrap
  reap_orphans git-nginx "nginx: worker"

  if ! daemon_running git-fcgiwrap; then
    rm -f "$G/fcgiwrap.sock"  # a stale socket from a killed run would make the bind fail
    start_daemon git-fcgiwrap /usr/sbin/fcgiwrap -f -c 4 -p "$HTTP_BACKEND" -s "unix:$G/fcgiwrap.sock"
  fi
  wait_for "fcgiwrap socket" 10 alive git-fcgiwrap test -S "$G/fcgiwrap.sock"

  need_port git-nginx "$HTTP_ADDR"
  need_port git-nginx "$HTTPS_ADDR"
  /usr/sbin/nginx -e stderr -p "$G/nginx" -c "$G/nginx/nginx.conf" -t -q || die "bad nginx config $G/nginx/nginx.conf"
  start_daemon git-nginx /usr/sbin/nginx -e stderr -p "$G/nginx" -c "$G/nginx/nginx.conf"
  wait_for "git http on $HTTP_ADDR" 15 alive git-nginx http_ok "http://$HTTP_ADDR/"
  wait_for "git https on $HTTPS_ADDR" 15 alive git-nginx http_ok "https://$HTTPS_ADDR/"
}

# --- SSH: our own sshd on its own port, host key, client key and config. ---

write_sshd_conf() {
  local s="$G/ssh"
  cat > "$s/sshd_config" <<SSHD
# Written by e2e/world/gitserver.sh: git over SSH for the local world.
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $s/host_ed25519
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
AllowUsers $SSH_USER
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The world dir may sit under /tmp (world-writable), which StrictModes would refuse.
StrictModes no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
LogLevel INFO
SSHD
}

ssh_up() {
  apt_ensure sshd openssh-server
  apt_ensure ssh-keygen openssh-client
  local s="$G/ssh"
  mkdir -p "$s"
  [ -f "$s/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sluice-world-git-host -f "$s/host_ed25519"
  [ -f "$s/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C sluice-world-git-client -f "$s/client_ed25519"
  # restrict: no pty or forwarding, commands (git-upload-pack/git-receive-pack) only.
  echo "restrict $(cat "$s/client_ed25519.pub")" > "$s/authorized_keys"
  echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$s/host_ed25519.pub")" > "$s/known_hosts"
  write_sshd_conf
  # sshd's compiled-in privilege separation directory; the one path outside $WORLD_DIR.
  mkdir -p /run/sshd && chmod 0755 /run/sshd
  /usr/sbin/sshd -t -f "$s/sshd_config" || die "bad sshd config $s/sshd_config"
  need_port git-sshd "127.0.0.1:$SSH_PORT"
  # -D: stay in the foreground so the recorded pid is sshd's; -e: log to stderr (the world log).
  start_daemon git-sshd /usr/sbin/sshd -D -e -f "$s/sshd_config"
  wait_for "git sshd on 127.0.0.1:$SSH_PORT" 15 alive git-sshd ssh_ok
}

# ssh_ok: a key login runs a command, as git's will (host key, client key and exec all work).
ssh_ok() {
  ssh -p "$SSH_PORT" -i "$G/ssh/client_ed25519" -o BatchMode=yes -o IdentitiesOnly=yes \
    -o UserKnownHostsFile="$G/ssh/known_hosts" -o StrictHostKeyChecking=yes -o ConnectTimeout=2 \
    "$SSH_USER@127.0.0.1" git --version
}

up() {
  mkdir -p "$REPOS"
  http_up
  ssh_up
  publish git <<EOF
export SLUICE_GIT_ROOT=$REPOS
export SLUICE_CHART_REPOS_DIR=$G/charts
export SLUICE_CHART_REPOS_URL=https://$HTTPS_ADDR/charts
export SLUICE_GIT_HTTP_URL=http://$HTTP_ADDR
export SLUICE_GIT_HTTPS_URL=https://$HTTPS_ADDR
export SLUICE_GIT_USER=$GIT_USER
export SLUICE_GIT_PASSWORD=$(secret "$G/password")
export SLUICE_GIT_SSH_URL=ssh://$SSH_USER@127.0.0.1:$SSH_PORT$REPOS
export SLUICE_GIT_SSH_KEY=$G/ssh/client_ed25519
export SLUICE_GIT_KNOWN_HOSTS=$G/ssh/known_hosts
export SLUICE_GIT_SSH_COMMAND="ssh -i $G/ssh/client_ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=$G/ssh/known_hosts -o StrictHostKeyChecking=yes"
export SLUICE_CA_FILE=$WORLD_DIR/pki/ca.crt
EOF
  log "git up: http://$HTTP_ADDR, https://$HTTPS_ADDR (user $GIT_USER), ssh://$SSH_USER@127.0.0.1:$SSH_PORT$REPOS"
}

# descendants PID: every process below PID (sshd's sessions and their commands, which setsid).
descendants() {
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do echo "$c"; descendants "$c"; done
}

down() {
  local f pid
  # sshd's sessions and the commands they run leave its process group: end them by pid first.
  f="$WORLD_DIR/pids/git-sshd.pid"
  if [ -f "$f" ]; then
    for pid in $(descendants "$(cat "$f")"); do kill -TERM "$pid" 2>/dev/null || true; done
  fi
  reap_orphans git-fcgiwrap fcgiwrap
  reap_orphans git-nginx "nginx: worker"
  # In parallel: each stop waits for its pid to be reaped, which takes PID 1 a moment here.
  stop_daemon git-sshd & stop_daemon git-nginx & stop_daemon git-fcgiwrap &
  wait
  rm -f "$G/fcgiwrap.sock"
  log "git down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
