#!/bin/sh
# Makes the QEMU boot tests' images, reusing what is cached: the base
# image is rebuilt only when base.sh changes, the disk only when the base,
# the package or disk.sh changes.
#
#   hack/e2e/image.sh OUTDIR PACKAGE [waagent]
#
# With the waagent variant PACKAGE is "none": Debian's WALinuxAgent
# provisions instead of azinit (make e2e-compare).
set -eu
out=${1:?usage: image.sh OUTDIR PACKAGE [waagent]}
pkg=${2:?usage: image.sh OUTDIR PACKAGE [waagent]}
variant=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
cache=${AZINIT_E2E_CACHE:-/var/tmp/azinit-e2e}
if [ "$(id -u)" != 0 ]; then
	echo "hack/e2e/image.sh: building the image needs root (debootstrap, chroot)" >&2
	exit 1
fi
if [ "$pkg" != none ] && [ ! -f "$pkg" ]; then
	echo "hack/e2e/image.sh: no package $pkg (make deb)" >&2
	exit 1
fi
for tool in debootstrap mkfs.ext4; do
	command -v "$tool" >/dev/null || { echo "hack/e2e/image.sh: $tool is not installed" >&2; exit 1; }
done

flavour=${variant:-azinit}
base=$cache/base-$flavour-$(echo "$variant" | cat "$here/base.sh" - | sha256sum | cut -c1-16)
if [ ! -e "$base/done" ]; then
	echo "building the base image in $base (about 2 minutes)" >&2
	mkdir -p "$cache"
	for old in "$cache/base-$flavour"-*; do
		[ -e "$old" ] && [ "$old" != "$base" ] && rm -rf "$old"
	done
	mkdir -p "$base"
	# The package cache survives base rebuilds.
	mkdir -p "$cache/debootstrap-cache"
	ln -sfn "$cache/debootstrap-cache" "$base/debootstrap-cache"
	"$here/base.sh" "$base" $variant
	touch "$base/done"
fi

if [ "$pkg" = none ]; then
	key=$(cat "$base/kernel-version" "$here/disk.sh" "$here/e2e-runner.service" | sha256sum | cut -c1-16)
else
	key=$(cat "$base/kernel-version" "$here/disk.sh" "$here/e2e-runner.service" "$pkg" | sha256sum | cut -c1-16)
fi
key=$(basename "$base")-$key
if [ -e "$out/disk.img" ] && [ "$(cat "$out/key" 2>/dev/null)" = "$key" ]; then
	exit 0
fi
echo "making the disk in $out" >&2
rm -f "$out/key"
"$here/disk.sh" "$base" "$pkg" "$out"
echo "$key" >"$out/key"
