#!/usr/bin/env bash
# Checks that the committed BPF objects and their Go bindings (bpf2go's *_bpfel.o and
# *_bpfel.go) are what bpf/*.c compiles to: regenerates them with Debian's clang in a
# scratch copy of the sources and compares. Objects are compared byte for byte, and,
# where the bytes differ (another clang or llvm-strip version), by their disassembly
# (llvm-objdump -d -r: code and map relocations; the CO-RE relocations in .BTF.ext are
# not compared then). A mismatch fails: run make generate.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PROBE=receiver/ebpfreceiver/internal/probe

for tool in clang llvm-objdump llvm-strip; do
	command -v "$tool" >/dev/null || { echo "check-bpf-objects: $tool is missing: hack/install-deps.sh generate" >&2; exit 1; }
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# The go:generate lines name the sources relative to the probe package, and
# `go tool bpf2go` needs the module: copy exactly those.
mkdir -p "$scratch/$PROBE"
cp go.mod go.sum "$scratch/"
cp -r bpf "$scratch/"
cp "$PROBE"/*.go "$scratch/$PROBE/"
rm -f "$scratch/$PROBE"/*_bpfel.go
(cd "$scratch/$PROBE" && go generate ./...) >&2

status=0
for committed in "$PROBE"/*_bpfel.o "$PROBE"/*_bpfel.go; do
	fresh=$scratch/$committed
	name=${committed##*/}
	if [ ! -f "$fresh" ]; then
		echo "check-bpf-objects: $committed is committed but no go:generate line makes it" >&2
		status=1
	elif cmp -s "$committed" "$fresh"; then
		echo "check-bpf-objects: $name matches"
	elif [[ $name == *.o ]] && diff -q <(llvm-objdump -d -r --no-show-raw-insn "$committed" | tail -n +3) \
		<(llvm-objdump -d -r --no-show-raw-insn "$fresh" | tail -n +3) >/dev/null; then
		echo "check-bpf-objects: $name matches in its disassembly (the bytes differ: another clang?)"
	else
		echo "check-bpf-objects: $committed does not match what its source compiles to" >&2
		status=1
	fi
done
for fresh in "$scratch/$PROBE"/*_bpfel.o "$scratch/$PROBE"/*_bpfel.go; do
	[ -f "${fresh#"$scratch"/}" ] || { echo "check-bpf-objects: ${fresh#"$scratch"/} is generated but not committed" >&2; status=1; }
done
if ((status)); then
	echo "check-bpf-objects: the committed BPF objects are stale: run make generate and commit the result" >&2
fi
exit $status
