#!/usr/bin/env bash
# Fetches the kernel the qemu tests boot (TestDenyExecUnderQemu): Debian's 6.12, which
# runs BPF LSM by default, from Debian's archive, without installing it. Cached in
# $OTELCOL_K8SSEC_CACHE/kernels (default ~/.cache/otelcol-k8ssec/kernels); prints the
# vmlinuz path.
set -euo pipefail

PKG=linux-image-6.12.100+deb12-amd64
VERSION=6.12.100+deb12-amd64
DIR=${OTELCOL_K8SSEC_CACHE:-$HOME/.cache/otelcol-k8ssec}/kernels
VMLINUZ=$DIR/boot/vmlinuz-$VERSION

if [ ! -s "$VMLINUZ" ]; then
	mkdir -p "$DIR"
	cd "$DIR"
	# apt's sandbox user cannot write to root's cache: download as root, quietly.
	apt-get download -qq -o APT::Sandbox::User=root "$PKG" >&2 ||
		{ apt-get update -qq >&2 && apt-get download -qq -o APT::Sandbox::User=root "$PKG" >&2; }
	dpkg-deb --fsys-tarfile "$PKG"_*.deb | tar -x ./boot/vmlinuz-"$VERSION"
	rm -f "$PKG"_*.deb
fi
echo "$VMLINUZ"
