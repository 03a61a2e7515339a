#!/usr/bin/env bash
# Installs the Debian packages a task needs, when some are missing: the one list that
# `make test`, `make generate`, `make check-bpf` and .ci/run all use.
#
#   hack/install-deps.sh test       what the tests run: nginx, openssl, qemu, busybox, a C compiler, Alertmanager
#   hack/install-deps.sh generate   what regenerating the BPF objects needs: clang, llvm, libbpf
#   hack/install-deps.sh ci         both, and what a bare CI machine lacks (git, make, CA certs)
#
# As root it runs `apt-get update` once and installs what is missing. Not root, it
# installs nothing: it prints the exact `apt-get install` line and fails.
set -euo pipefail

# Why each package is here:
TEST=(
	nginx-light     # ingress_log's end-to-end test runs a real nginx writing ingress-nginx's log format
	openssl         # make-certs.sh, which the deployment test runs
	qemu-system-x86 # the BPF LSM test boots another kernel (hack/fetch-test-kernel.sh) under qemu
	busybox-static  # ... with a busybox initramfs
	clang           # the uprobe tests compile a tiny C program whose functions they probe (System V ABI arguments)
	libc6-dev       # ... its headers and C library
	curl            # the runtime attack suite (receiver/ebpfreceiver/attack_test.go): curl to the API server, a web server's load
	openssh-client  # ... ssh and scp to a port other than 22
	e2fsprogs       # ... debugfs
	prometheus-alertmanager # the security_alerts exporter's tests send alerts to a real Alertmanager and read them back
	containerd              # the single-node cluster (internal/k8snode): the container runtime kubelet drives over CRI
	runc                    # ... the OCI runtime containerd starts containers with
	containernetworking-plugins # ... bridge, host-local and portmap, the pods' network (/usr/lib/cni)
	iptables                # ... kube-proxy's Services and the rule that keeps pod egress on the bridge
	conntrack               # ... kube-proxy clears stale UDP entries with it (DNS)
	iproute2                # ... ip: the harness makes the pods' bridge
)
GENERATE=(
	clang      # bpf2go compiles bpf/*.c
	llvm       # llvm-strip for bpf2go, llvm-objdump for the object check
	libbpf-dev # bpf_helpers.h and friends
)
CI=(ca-certificates make git)

case "${1:-}" in
test) want=("${TEST[@]}") ;;
generate) want=("${GENERATE[@]}") ;;
ci) want=("${CI[@]}" "${TEST[@]}" "${GENERATE[@]}") ;;
*) echo "usage: $0 test|generate|ci" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing Debian packages; as root, run:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >&2
