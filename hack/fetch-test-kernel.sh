#!/usr/bin/env bash
# Fetches a kernel the qemu tests boot (TestDenyExecUnderQemu, TestHooksUnderQemu) from Debian's archive,
# without installing it: the newest linux-image of the series that apt's lists offer,
# so that the archive dropping an old version breaks nothing. Debian's kernels run BPF
# LSM by default and have BTF, kprobes and fentry built in (../shared/KERNELS.md).
#
#   hack/fetch-test-kernel.sh [6.12|6.1]     (default 6.12)
#
# Cached in $OTELCOL_K8SSEC_CACHE/kernels (default ~/.cache/otelcol-k8ssec/kernels) and
# linked there as vmlinuz-<series>, the stable name the tests use. Prints that link's
# path on stdout; says on stderr which version it used and why.
#
# Order of preference: the newest version in apt's lists (after `apt-get update` when
# they have none of the series); when that cannot be downloaded, the newest already
# cached; last, the last version known to work here.
set -euo pipefail

SERIES=${1:-6.12}
case "$SERIES" in
6.12) PATTERN='^linux-image-6\.12\.[0-9]+\+deb12-amd64$'; LAST_KNOWN_GOOD=6.12.100+deb12-amd64 ;;
6.1) PATTERN='^linux-image-6\.1\.0-[0-9]+-amd64$'; LAST_KNOWN_GOOD=6.1.0-57-amd64 ;;
*) echo "fetch-test-kernel: unknown series $SERIES (6.12 or 6.1)" >&2; exit 2 ;;
esac

DIR=${OTELCOL_K8SSEC_CACHE:-$HOME/.cache/otelcol-k8ssec}/kernels
LINK=$DIR/vmlinuz-$SERIES
mkdir -p "$DIR"

log() { echo "fetch-test-kernel: $*" >&2; }

# The newest version of the series named in apt's lists ("" when none is).
newest_listed() {
	apt-cache search --names-only "$PATTERN" 2>/dev/null | awk '{print $1}' |
		sed 's/^linux-image-//' | sort -V | tail -n 1
}

# Downloads linux-image-$1 and extracts its vmlinuz into the cache.
download() {
	local version=$1 tmp
	[ -s "$DIR/boot/vmlinuz-$version" ] && return 0
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	# apt's sandbox user cannot write to root's cache: download as root, quietly.
	(cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "linux-image-$version" >&2) || return 1
	dpkg-deb --fsys-tarfile "$tmp"/linux-image-"$version"_*.deb |
		tar -x -C "$DIR" ./boot/vmlinuz-"$version" || return 1
	[ -s "$DIR/boot/vmlinuz-$version" ]
}

# The newest version of the series already in the cache ("" when none is).
newest_cached() {
	local f
	for f in "$DIR"/boot/vmlinuz-*; do
		[ -s "$f" ] || continue
		f=${f##*/vmlinuz-}
		[[ "linux-image-$f" =~ $PATTERN ]] && echo "$f"
	done | sort -V | tail -n 1
}

use() {
	ln -sfn "boot/vmlinuz-$1" "$LINK"
	log "using linux-image-$1 ($2)"
	echo "$LINK"
	exit 0
}

listed=$(newest_listed)
if [ -z "$listed" ]; then
	log "apt's lists name no linux-image-$SERIES: apt-get update"
	apt-get update -qq >&2 || log "apt-get update failed"
	listed=$(newest_listed)
fi
if [ -n "$listed" ]; then
	if download "$listed"; then
		use "$listed" "the newest the archive offers"
	fi
	log "could not download linux-image-$listed"
fi
cached=$(newest_cached)
if [ -n "$cached" ]; then
	use "$cached" "the newest already cached; the archive's newest was ${listed:-not listed}"
fi
if download "$LAST_KNOWN_GOOD"; then
	use "$LAST_KNOWN_GOOD" "the last version known to work; the archive's newest was ${listed:-not listed}"
fi
log "no linux-image-$SERIES could be had: neither ${listed:-a listed version} nor $LAST_KNOWN_GOOD (is Debian's archive reachable? apt-get update)"
exit 1
