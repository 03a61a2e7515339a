#!/usr/bin/env bash
# Measures the node agent's memory at idle, the way a node sees it: the ocb-built
# slim agent binary (_build/otelcol-k8ssec-agent) with the embedded `k8ssec:agent`
# config (as the DaemonSet runs it), in a memory cgroup of its own, exporting with
# mutual TLS to a stand-in gateway (the full build, _build/otelcol-k8ssec: an OTLP
# receiver with the gateway's certificate, writing to a file). BIN=_build/otelcol-k8ssec
# measures the full build running the same config instead. Prints
# the RSS split (the binary's file pages, the BPF ring buffer's mapping, anonymous
# memory) and what the cgroup is charged: usage and the working set kubelet and
# `kubectl top` report (usage - inactive_file), kernel memory (BPF maps) included.
#
#   make build && sudo hack/agent-idle-memory.sh [-s SECONDS] [-w] [-- --set k=v ...]
#
#   -s SECONDS  idle time before measuring (default 20)
#   -w          warm: run the binary where it is, its pages already in the page cache
#               (charged to whoever read them first, e.g. the build). By default it is
#               run from a fresh copy whose page cache is dropped first, so that what
#               it faults in is charged to its own cgroup, as on a node after a reboot.
#   -n          whole node: do not scope the ebpf receiver to an empty cgroup. By
#               default it watches an empty cgroup (cgroup_path), so that whatever else
#               runs on this machine does not make the agent busy: idle means no events.
#   -r          then reclaim: page out the binary's read-only file pages from the agent
#               (process_madvise MADV_PAGEOUT, what the kernel does to them under memory
#               pressure), idle SECONDS again and measure again: the file pages the idle
#               agent touches again, as opposed to those only its start touched.
#   -p          also print the binary's resident pages by ELF section (its pagemap
#               against readelf -S): which of text, rodata, pclntab and data stay mapped.
#   args after -- go to the agent (e.g. --set receivers::ebpf::ring_buffer_size=16777216).
#   GOGC, GOMEMLIMIT and GODEBUG are passed through from the environment.
#
# Needs root, BTF and tracefs (as the ebpf receiver), openssl, and a memory cgroup
# controller (cgroup v2, or v1's memory hierarchy).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/_build/otelcol-k8ssec-agent}
SINKBIN=$ROOT/_build/otelcol-k8ssec
SECONDS_IDLE=20
COLD=1
SCOPE=1
RECLAIM=0
SECTIONS=0
while getopts "s:wnrp" opt; do
	case $opt in
	s) SECONDS_IDLE=$OPTARG ;;
	w) COLD=0 ;;
	n) SCOPE=0 ;;
	r) RECLAIM=1 ;;
	p) SECTIONS=1 ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed 's/^# \{0,1\}//;$d' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift

[ "$(id -u)" = 0 ] || { echo "needs root (BPF, cgroups)" >&2; exit 1; }
for b in "$BIN" "$SINKBIN"; do [ -x "$b" ] || { echo "$b missing: make build" >&2; exit 1; }; done

TMP=$(mktemp -d /tmp/agent-idle-memory.XXXXXX)
CG="" SCOPECG="" AGENT="" SINK=""
cleanup() {
	for p in $AGENT $SINK; do kill "$p" 2>/dev/null || true; done
	for p in $AGENT $SINK; do
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
	for d in $CG $SCOPECG; do rmdir "$d" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_healthy() { # url pid log
	for _ in $(seq 300); do
		curl -sf "$1" >/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || { echo "exited; log:" >&2; tail -20 "$3" >&2; exit 1; }
		sleep 0.1
	done
	echo "not healthy after 30s; log:" >&2
	tail -20 "$3" >&2
	exit 1
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }  # kB -> MiB
mibb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; } # bytes -> MiB

bash "$ROOT/distributions/otelcol-k8ssec/manifests/make-certs.sh" "$TMP/certs" >/dev/null 2>&1
C=$TMP/certs

# The stand-in gateway: accepts the agent's client certificate, keeps what it gets.
OTLP=$(free_port) SINKHEALTH=$(free_port)
cat >"$TMP/sink.yaml" <<EOF
extensions:
  health_check: {endpoint: "127.0.0.1:$SINKHEALTH"}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$OTLP
        tls: {cert_file: $C/gateway.crt, key_file: $C/gateway.key, client_ca_file: $C/agent-ca.crt}
exporters:
  file: {path: $TMP/received.jsonl}
service:
  extensions: [health_check]
  pipelines:
    logs: {receivers: [otlp], exporters: [file]}
    metrics: {receivers: [otlp], exporters: [file]}
  telemetry:
    metrics: {level: none}
EOF
"$SINKBIN" --config "file:$TMP/sink.yaml" >"$TMP/sink.log" 2>&1 &
SINK=$!
wait_healthy "http://127.0.0.1:$SINKHEALTH/" "$SINK" "$TMP/sink.log"

# The agent's binary: a copy whose page cache is dropped (cold), or the build's (warm).
AGENTBIN=$BIN
if [ "$COLD" = 1 ]; then
	AGENTBIN=$TMP/$(basename "$BIN")
	cp "$BIN" "$AGENTBIN"
	sync "$AGENTBIN"
	dd if="$AGENTBIN" iflag=nocache count=0 status=none # POSIX_FADV_DONTNEED on the whole file
fi

# cgroup v2 mount (also where cgroup_path points), and a memory cgroup for the agent.
CG2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
ARGS=()
if [ "$SCOPE" = 1 ]; then
	[ -n "$CG2" ] || { echo "no cgroup v2 mount for cgroup_path; use -n" >&2; exit 1; }
	SCOPECG=$CG2/k8ssec-idle-empty-$$
	mkdir "$SCOPECG"
	ARGS+=(--set "receivers::ebpf::cgroup_path=$SCOPECG")
fi
if [ -n "$CG2" ] && grep -qw memory "$CG2/cgroup.controllers"; then
	grep -qw memory "$CG2/cgroup.subtree_control" || echo +memory >"$CG2/cgroup.subtree_control"
	CGV=2 CG=$CG2/k8ssec-agent-mem-$$
elif [ -d /sys/fs/cgroup/memory ]; then
	CGV=1 CG=/sys/fs/cgroup/memory/k8ssec-agent-mem-$$
else
	echo "no memory cgroup controller" >&2
	exit 1
fi
mkdir "$CG"

HEALTH=$(free_port) METRICS=$(free_port)
# Joins the cgroup before exec, so that everything the agent faults in is charged there.
sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" env \
	K8S_NODE_NAME=node-1 \
	K8SSEC_GATEWAY_ENDPOINT=127.0.0.1:$OTLP \
	K8SSEC_CA_FILE=$C/gateway-ca.crt K8SSEC_CERT_FILE=$C/agent.crt K8SSEC_KEY_FILE=$C/agent.key \
	K8SSEC_STORAGE_DIR=$TMP/storage \
	K8SSEC_HEALTH_ENDPOINT=127.0.0.1:$HEALTH K8SSEC_METRICS_PORT=$METRICS \
	"$AGENTBIN" --config k8ssec:agent \
	--set receivers::ebpf::kubernetes::auth_type=none \
	--set exporters::otlp_grpc/gateway::tls::server_name_override=otelcol-k8ssec-gateway.otelcol-k8ssec.svc \
	${ARGS[@]+"${ARGS[@]}"} "$@" >"$TMP/agent.log" 2>&1 &
AGENT=$!
AGENTARGS="$*"
wait_healthy "http://127.0.0.1:$HEALTH/" "$AGENT" "$TMP/agent.log"
# Clears the accessed bits of the agent's pages, so that smaps' Referenced then
# tells the binary's pages touched while idle from those only the start touched
# (or that the kernel mapped around a fault: 64 KiB around it, whole large folios).
echo 1 >"/proc/$AGENT/clear_refs"
sleep "$SECONDS_IDLE"
kill -0 "$AGENT" 2>/dev/null || { echo "agent exited; log:" >&2; tail -20 "$TMP/agent.log" >&2; exit 1; }

report() { # title
	# RSS by mapping: the binary's own file pages, the ring buffer (the only BPF map the
	# agent mmaps; its data pages are mapped twice, so they count twice), the rest.
	read -r RSS BINF BINREF RING ANON OTHER < <(awk -v bin="$AGENTBIN" '
		function flush() { if (name == bin) { b += rss1 - anon1; br += ref1 - anon1 } else if (name ~ /^anon_inode:bpf/) r += rss1 }
		/^[0-9a-f]+-[0-9a-f]+ / { flush(); name = $6; rss1 = anon1 = ref1 = 0 }
		/^Rss:/ { rss += $2; rss1 = $2 }
		/^Referenced:/ { ref1 = $2 }
		/^Anonymous:/ { a += $2; anon1 = $2 }
		END { flush(); print rss, b, (br > 0 ? br : 0), r, a, rss - b - r - a }' "/proc/$AGENT/smaps")

	# Kernel memory of the BPF maps (the ring buffer's pages included), once per map.
	BPF=0
	for f in /proc/$AGENT/fdinfo/*; do
		awk '/^map_id:/ { id = $2 } /^memlock:/ { m = $2 } END { if (id != "") print id, m }' "$f" 2>/dev/null
	done | sort -u | awk '{ s += $2 } END { print s + 0 }' >"$TMP/bpf"
	BPF=$(cat "$TMP/bpf")

	HEAP=$(curl -sf "http://127.0.0.1:$METRICS/metrics" | awk '/^otelcol_process_runtime_heap_alloc_bytes/ { print $2 }')
	GOSYS=$(curl -sf "http://127.0.0.1:$METRICS/metrics" | awk '/^otelcol_process_runtime_total_sys_memory_bytes/ { print $2 }')

	cgstat() { awk -v k="$1" '$1 == k { print $2 }' "$CG/memory.stat"; }
	if [ "$CGV" = 2 ]; then
		USAGE=$(cat "$CG/memory.current")
		INACTIVE=$(cgstat inactive_file) CGANON=$(cgstat anon) CGFILE=$(cgstat file) KERNEL=$(cgstat kernel)
	else
		USAGE=$(cat "$CG/memory.usage_in_bytes")
		INACTIVE=$(cgstat total_inactive_file) CGANON=$(cgstat total_rss) CGFILE=$(cgstat total_cache)
		KERNEL=$(cat "$CG/memory.kmem.usage_in_bytes")
	fi
	WS=$((USAGE - INACTIVE))

	cat <<-EOF
	$1
	agent: $AGENTBIN --config k8ssec:agent ${ARGS[*]+${ARGS[*]}} $AGENTARGS
	idle ${SECONDS_IDLE}s, $([ "$COLD" = 1 ] && echo "cold page cache (charged to the agent)" || echo "warm page cache"), cgroup v$CGV$([ -n "${GOGC:-}" ] && echo ", GOGC=$GOGC")$([ -n "${GOMEMLIMIT:-}" ] && echo ", GOMEMLIMIT=$GOMEMLIMIT")
	RSS                      $(mib "$RSS") MiB
	  binary file pages      $(mib "$BINF") MiB  (touched since the idle period began $(mib "$BINREF") MiB)
	  ring buffer mapping    $(mib "$RING") MiB
	  anonymous              $(mib "$ANON") MiB  (Go heap allocated $(mibb "${HEAP:-0}") MiB, Go runtime total $(mibb "${GOSYS:-0}") MiB)
	  other                  $(mib "$OTHER") MiB
	BPF maps (kernel)        $(mibb "$BPF") MiB
	cgroup usage             $(mibb "$USAGE") MiB  (anon $(mibb "$CGANON"), file $(mibb "$CGFILE"), kernel $(mibb "$KERNEL"))
	cgroup working set       $(mibb "$WS") MiB  (usage - inactive_file $(mibb "$INACTIVE"); what kubelet and kubectl top report)
	EOF
}

report "== idle"
if [ "$SECTIONS" = 1 ]; then
	python3 - "$AGENT" "$AGENTBIN" <<'PY'
import re, struct, subprocess, sys
pid, path = int(sys.argv[1]), sys.argv[2]
secs = []  # (start, end, name) of the sections that are loaded
for l in subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", l)
    if m and int(m.group(2), 16):
        a = int(m.group(2), 16)
        secs.append((a, a + int(m.group(3), 16), m.group(1)))
res = {n: 0 for _, _, n in secs}
with open(f"/proc/{pid}/pagemap", "rb") as pm:
    for l in open(f"/proc/{pid}/maps"):
        f = l.split()
        if len(f) < 6 or f[5] != path:
            continue
        a, b = (int(x, 16) for x in f[0].split("-"))
        pm.seek(a // 4096 * 8)
        data = pm.read((b - a) // 4096 * 8)
        for i in range((b - a) // 4096):
            if struct.unpack_from("<Q", data, i * 8)[0] >> 63:  # present
                va = a + i * 4096
                for s, e, n in secs:
                    if s <= va < e:
                        res[n] += 1
print("the binary's resident pages by section (the bss sections are anonymous memory, not counted here)")
for s, e, n in secs:
    if e - s >= 65536:
        print(f"  {n:14s} {res[n] * 4 / 1024:6.1f} of {(e - s) / 1048576:6.1f} MiB")
PY
fi
if [ "$RECLAIM" = 1 ]; then
	python3 - "$AGENT" "$AGENTBIN" <<'PY'
import ctypes, os, sys
pid, path = int(sys.argv[1]), sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_open, SYS_process_madvise, MADV_PAGEOUT = 434, 440, 21  # x86_64
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
fd = libc.syscall(SYS_pidfd_open, pid, 0)
if fd < 0:
    sys.exit("pidfd_open: " + os.strerror(ctypes.get_errno()))
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    if len(f) >= 6 and f[5] == path and "w" not in f[1]:
        a, b = (int(x, 16) for x in f[0].split("-"))
        v = iovec(a, b - a)
        if libc.syscall(SYS_process_madvise, fd, ctypes.byref(v), 1, MADV_PAGEOUT, 0) < 0:
            sys.exit("process_madvise: " + os.strerror(ctypes.get_errno()))
PY
	sleep "$SECONDS_IDLE"
	report "== after reclaiming the binary's read-only pages and ${SECONDS_IDLE}s more idle"
fi
