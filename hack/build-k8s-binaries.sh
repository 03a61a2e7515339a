#!/usr/bin/env bash
# Builds the real Kubernetes binaries the test harnesses run, from the Go module proxy,
# into a cache outside the clone keyed by version: etcd and kube-apiserver
# (internal/k8stest), and for the single-node cluster (internal/k8snode) kubelet,
# kube-scheduler, kube-controller-manager, kube-proxy, kubectl and CoreDNS. A second
# run with the binaries present does nothing. Prints the directory that holds them
# (KUBEBUILDER_ASSETS).
#
# Why wrapper modules: both etcd's server module and k8s.io/kubernetes carry replace
# directives, so `go install mod@ver` refuses them; a throwaway module that requires the
# root module and restates its replaces (pointing at published versions) builds cleanly.
set -euo pipefail

ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
K8S_VERSION=${K8S_VERSION:-v1.36.3}
COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
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

# k8s_wrapper DIR: a module in DIR that requires k8s.io/kubernetes and pins every staging
# module it replaces locally to its published twin, importing every command we build so
# `go mod tidy` keeps what they need. One module for all of them: the compile is shared.
k8s_wrapper() {
  local dir=$1
  local staging="v0${K8S_VERSION#v1}"
  local gomod; gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module k8sbuild"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # sample-cli-plugin is not served and nothing we link needs it.
    sed -n '/^replace (/,/^)/p' "$gomod" | awk '/=> \.\/staging/ {print $1}' |
      grep -v '^k8s.io/sample-cli-plugin$' |
      while read -r m; do echo "	$m => $m $staging"; done
    echo ")"
  } >"$dir/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    for c in "${K8S_COMMANDS[@]}"; do echo "import _ \"k8s.io/kubernetes/cmd/$c\""; done
  } >"$dir/tools.go"
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true)
}

# The apiserver the control-plane tests run, and what the single-node cluster adds (kubelet,
# scheduler, controller-manager, kube-proxy, kubectl).
K8S_COMMANDS=(kube-apiserver kubelet kube-scheduler kube-controller-manager kube-proxy kubectl)

# build_k8s: whichever of K8S_COMMANDS is missing from $OUT, with one `go build` so the
# packages they share compile once.
build_k8s() {
  local missing=() c
  for c in "${K8S_COMMANDS[@]}"; do [ -x "$OUT/$c" ] || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local dir; dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  log "building ${missing[*]} $K8S_VERSION (the apiserver alone: 8-16 minutes, ~2.3 GiB on 2 cores; the node's four more and kubectl: about as long again)"
  k8s_wrapper "$dir"
  mkdir -p "$dir/bin"
  local pkgs=()
  for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$dir/bin/" "${pkgs[@]}")
  # Copied beside, then renamed: a cut-short copy never looks like a built binary.
  for c in "${missing[@]}"; do cp "$dir/bin/$c" "$OUT/$c.tmp" && mv "$OUT/$c.tmp" "$OUT/$c"; done
}

# CoreDNS for the single-node cluster's DNS (internal/k8snode runs it as a host process):
# a main with only the plugins that serves cluster.local and forwards the rest, in a
# module of its own (CoreDNS requires newer client-go than Kubernetes $K8S_VERSION).
build_coredns() {
  [ -x "$OUT/coredns" ] && return 0
  local dir; dir=$(mktemp -d)
  trap 'rm -rf "$dir"' RETURN
  log "building coredns $COREDNS_VERSION (a few minutes)"
  cat >"$dir/go.mod" <<MOD
module corednsbuild

go 1.26

require github.com/coredns/coredns $COREDNS_VERSION
MOD
  cat >"$dir/main.go" <<'GO'
// CoreDNS with the plugins a test cluster's DNS needs, in CoreDNS's own order.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "cache", "kubernetes", "forward"}
}

func main() { coremain.Run() }
GO
  (cd "$dir" && GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
   cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$OUT/coredns.tmp" .)
  mv "$OUT/coredns.tmp" "$OUT/coredns"
}

build_etcd
build_k8s
build_coredns
echo "$OUT"
