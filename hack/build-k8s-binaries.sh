#!/usr/bin/env bash
# Builds the real etcd and kube-apiserver the Kubernetes test harness runs, from the Go
# module proxy, into a cache outside the clone keyed by version. A second run with the
# binaries present does nothing. Prints the directory that holds them (KUBEBUILDER_ASSETS).
#
# Why wrapper modules: both etcd's server module and k8s.io/kubernetes carry replace
# directives, so `go install mod@ver` refuses them; a throwaway module that requires the
# root module and restates its replaces (pointing at published versions) builds cleanly.
set -euo pipefail

ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
K8S_VERSION=${K8S_VERSION:-v1.36.3}
CACHE=${OTELCOL_K8SSEC_CACHE:-$HOME/.cache/otelcol-k8ssec}
OUT="$CACHE/k8s-bin/etcd-$ETCD_VERSION-k8s-$K8S_VERSION"
mkdir -p "$OUT"

log() { echo "build-k8s-binaries: $*" >&2; }

build_etcd() {
  [ -x "$OUT/etcd" ] && return 0
  local dir; dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  log "building etcd $ETCD_VERSION (about 3 minutes on 2 cores)"
  cat >"$dir/go.mod" <<MOD
module etcdbuild

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)
MOD
  # server/v3's main package lives at the module root in 3.6 (etcdmain is imported by it).
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$dir" && go mod tidy >/dev/null 2>&1 || true
   cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$OUT/etcd.tmp" "$OUT/etcd"
}

build_apiserver() {
  [ -x "$OUT/kube-apiserver" ] && return 0
  local dir; dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  local staging="v0${K8S_VERSION#v1}"
  log "building kube-apiserver $K8S_VERSION (8-16 minutes, ~2.3 GiB on 2 cores)"
  local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module apiserverbuild"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # Every staging module k8s.io/kubernetes replaces locally, pinned to its published twin.
    # sample-cli-plugin is not served and nothing the apiserver links needs it.
    sed -n '/^replace (/,/^)/p' "$gomod" | awk '/=> \.\/staging/ {print $1}' |
      grep -v '^k8s.io/sample-cli-plugin$' |
      while read -r m; do echo "	$m => $m $staging"; done
    echo ")"
  } >"$dir/go.mod"
  cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
   cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$OUT/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
  mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
}

build_etcd
build_apiserver
echo "$OUT"
