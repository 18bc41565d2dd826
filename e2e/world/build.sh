#!/usr/bin/env bash
# Builds the control plane of the local world from Go modules, into a per-version cache outside the
# repo. A warm cache builds nothing. Usage: build.sh
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/versions.sh"
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -trimpath" CGO_ENABLED=0
log() { printf '[build] %s\n' "$*" >&2; }

build_kubernetes() {
  local out="$KUBE_BIN" need=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do [ -x "$out/$b" ] || need=1; done
  [ "$need" = 1 ] || { log "kubernetes $KUBE_VERSION cached in $out"; return; }
  local src="$WORLD_CACHE/src/kubernetes-$KUBE_VERSION"
  mkdir -p "$src" "$out"
  # The wrapper module: require k8s.io/kubernetes and replace each staging module (which upstream
  # points at ./staging/src/...) with its published v0.Y.Z tag.
  local upstream_mod minor staging_tag
  upstream_mod=$(cd "$src" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  minor=$(echo "$KUBE_VERSION" | cut -d. -f2)
  staging_tag="v0.$minor.$(echo "$KUBE_VERSION" | cut -d. -f3)"
  {
    echo "module sluice.dev/world/kubernetes"
    echo
    grep -m1 '^go ' "$upstream_mod"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    grep -E '=> \./staging/' "$upstream_mod" | awk -v t="$staging_tag" '{print "\t" $1 " => " $1 " " t}'
    echo ")"
  } > "$src/go.mod"
  cat > "$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$src" && go mod tidy -e >/dev/null 2>&1 || true; cd "$src" && go mod download)
  local pkg=k8s.io/component-base/version
  local ld="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$out/$b" ] && continue
    log "building $b $KUBE_VERSION"
    (cd "$src" && go build -tags tools -ldflags "$ld" -o "$out/$b.tmp" "k8s.io/kubernetes/cmd/$b" && mv "$out/$b.tmp" "$out/$b")
  done
}

build_etcd() {
  [ -x "$ETCD_BIN/etcd" ] && { log "etcd $ETCD_VERSION cached"; return; }
  local src="$WORLD_CACHE/src/etcd-$ETCD_VERSION"
  mkdir -p "$src" "$ETCD_BIN"
  cat > "$src/main.go" <<'GO'
// A thin wrapper over etcdmain, so etcd builds from Go modules alone.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$src" && { [ -f go.mod ] || go mod init sluice.dev/world/etcd >/dev/null 2>&1; } \
    && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1)
  log "building etcd $ETCD_VERSION"
  (cd "$src" && go build -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" -o "$ETCD_BIN/etcd.tmp" . && mv "$ETCD_BIN/etcd.tmp" "$ETCD_BIN/etcd")
}

build_kwok() {
  [ -x "$KWOK_BIN/kwok" ] && { log "kwok $KWOK_VERSION cached"; return; }
  mkdir -p "$KWOK_BIN"
  log "building kwok $KWOK_VERSION"
  GOBIN="$KWOK_BIN" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

build_distribution() {
  [ -x "$DISTRIBUTION_BIN/registry" ] && { log "distribution $DISTRIBUTION_VERSION cached"; return; }
  mkdir -p "$DISTRIBUTION_BIN"
  log "building distribution (registry) $DISTRIBUTION_VERSION"
  GOBIN="$DISTRIBUTION_BIN" go install -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$DISTRIBUTION_VERSION" \
    "github.com/distribution/distribution/v3/cmd/registry@$DISTRIBUTION_VERSION"
}

build_helm() {
  [ -x "$HELM_BIN/helm" ] && { log "helm $HELM_VERSION cached"; return; }
  mkdir -p "$HELM_BIN"
  log "building helm $HELM_VERSION"
  GOBIN="$HELM_BIN" go install -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}

build_gitea() {
  [ -x "$GITEA_BIN/gitea" ] && [ -d "$GITEA_BIN/static/options" ] && { log "gitea $GITEA_VERSION cached"; return; }
  local src="$WORLD_CACHE/src/gitea-$GITEA_VERSION"
  mkdir -p "$src" "$GITEA_BIN"
  # Upstream's go.mod names its module gitea.dev, which no proxy serves; it is published as
  # code.gitea.io/gitea. The wrapper requires gitea.dev, points it at the published module, carries
  # upstream's own replace lines, and has upstream's main (NewMainApp / RunMainApp).
  local upstream_mod
  upstream_mod=$(cd "$src" && go mod download -json "code.gitea.io/gitea@$GITEA_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module sluice.dev/world/gitea"
    echo
    grep -m1 '^go ' "$upstream_mod"
    echo
    echo "require gitea.dev $GITEA_VERSION"
    echo
    echo "replace gitea.dev => code.gitea.io/gitea $GITEA_VERSION"
    grep -E '^replace ' "$upstream_mod" | sed 's#//.*##'
  } > "$src/go.mod"
  cat > "$src/main.go" <<'GO'
// Upstream's main.go, against the published module: the gitea command line, nothing else.
package main

import (
	"os"
	"runtime"
	"time"

	"gitea.dev/cmd"
	"gitea.dev/modules/log"
	"gitea.dev/modules/setting"
	_ "gitea.dev/modules/markup/markdown"

	"github.com/urfave/cli/v3"
)

var Version = "development"

func main() {
	setting.AppVer = Version
	setting.AppBuiltWith = " built with " + runtime.Version()
	setting.AppStartTime = time.Now().UTC()
	cli.OsExiter = func(code int) {
		log.GetManager().Close()
		os.Exit(code)
	}
	app := cmd.NewMainApp(cmd.AppVersion{Version: Version, Extra: setting.AppBuiltWith})
	_ = cmd.RunMainApp(app, os.Args...)
	log.GetManager().Close()
}
GO
  if [ ! -x "$GITEA_BIN/gitea" ]; then
    (cd "$src" && go mod tidy >/dev/null)
    log "building gitea $GITEA_VERSION"
    (cd "$src" && go build -ldflags "-s -w -X main.Version=${GITEA_VERSION#v}" -o "$GITEA_BIN/gitea.tmp" . && mv "$GITEA_BIN/gitea.tmp" "$GITEA_BIN/gitea")
  fi
  # Without the bindata tag gitea reads options/, templates/ and public/ from STATIC_ROOT_PATH:
  # a copy beside the binary, so the world needs no Go module cache to run. (The built frontend
  # is not in the module: pages are unstyled; the API is what the world uses.)
  local dir
  dir=$(cd "$src" && go mod download -json "code.gitea.io/gitea@$GITEA_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  rm -rf "$GITEA_BIN/static.tmp" && mkdir -p "$GITEA_BIN/static.tmp"
  cp -r "$dir/options" "$dir/templates" "$dir/public" "$GITEA_BIN/static.tmp/"
  chmod -R u+w "$GITEA_BIN/static.tmp"
  rm -rf "$GITEA_BIN/static" && mv "$GITEA_BIN/static.tmp" "$GITEA_BIN/static"
}

build_etcd
build_kwok
build_distribution
build_kubernetes
build_helm
build_gitea
log "done"
