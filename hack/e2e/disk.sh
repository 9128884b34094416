#!/bin/sh
# Makes the boot tests' disk from the base image (base.sh): installs the
# azinit package and the test runner, builds a dracut initramfs with the
# azinit module beside the base one, and writes the root file system
# image. Needs root; no network.
#
#   hack/e2e/disk.sh BASEDIR PACKAGE OUTDIR
#
# PACKAGE is the azinit .deb, or "none" to install nothing (the WALinuxAgent
# image). OUTDIR receives disk.img, vmlinuz, initrd.img and, with azinit,
# initrd-dracut.img.
set -eu
base=${1:?usage: disk.sh BASEDIR PACKAGE OUTDIR}
pkg=${2:?usage: disk.sh BASEDIR PACKAGE OUTDIR}
out=${3:?usage: disk.sh BASEDIR PACKAGE OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
# The copy is made beside the base, not in OUTDIR: `go ... ./...` must
# never walk into a tree with /proc mounted in it.
work=$(mktemp -d "$base.disk.XXXXXX")
rootfs=$work/rootfs

mkdir -p "$out"
cp -a "$base/rootfs" "$rootfs"
cleanup() {
	umount "$rootfs/proc" "$rootfs/sys" "$rootfs/dev" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

if [ "$pkg" != none ]; then
	cp "$pkg" "$rootfs/tmp/azinit.deb"
	chroot "$rootfs" dpkg -i /tmp/azinit.deb >"$out/dpkg.log" 2>&1 || {
		cat "$out/dpkg.log" >&2
		exit 1
	}
	rm "$rootfs/tmp/azinit.deb"
fi
cp "$here/e2e-runner.service" "$rootfs/etc/systemd/system/e2e-runner.service"
chroot "$rootfs" systemctl -q enable e2e-runner.service

kver=$(cat "$base/kernel-version")
cp "$base/vmlinuz" "$out/vmlinuz"
cp "$base/initrd.img" "$out/initrd.img"
rm -f "$out/initrd-dracut.img"
if [ -d "$rootfs/usr/lib/dracut/modules.d/90azinit" ]; then
	mount -t proc proc "$rootfs/proc"
	mount -t sysfs sysfs "$rootfs/sys"
	mount --bind /dev "$rootfs/dev"
	chroot "$rootfs" dracut --force --quiet --no-hostonly --no-hostonly-cmdline --gzip \
		--add azinit --omit "plymouth network network-legacy ifcfg nfs iscsi lvm mdraid dm crypt multipath btrfs" \
		--kver "$kver" /tmp/initrd-dracut.img >"$out/dracut.log" 2>&1 || {
		cat "$out/dracut.log" >&2
		exit 1
	}
	umount "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
	mv "$rootfs/tmp/initrd-dracut.img" "$out/initrd-dracut.img"
fi

rm -f "$out/disk.img"
truncate -s 2G "$out/disk.img"
mkfs.ext4 -q -F -L root -d "$rootfs" "$out/disk.img"
