#!/bin/sh
# Builds the Debian base image the QEMU boot tests install azinit into:
# a minimal bookworm with systemd, networkd, sshd, sudo and dracut-core,
# a trimmed kernel and a small initramfs for virtio disks. Needs root and
# the network (the Debian mirror); takes about 90 s.
#
#   hack/e2e/base.sh OUTDIR [waagent]
#
# OUTDIR receives rootfs/, vmlinuz and initrd.img. The waagent variant
# adds Debian's WALinuxAgent for `make e2e-compare`.
set -eu
out=${1:?usage: base.sh OUTDIR [waagent]}
variant=${2:-}
mirror=${MIRROR:-http://deb.debian.org/debian}
suite=bookworm
rootfs=$out/rootfs

include=systemd,systemd-sysv,dbus,udev,kmod,e2fsprogs,fdisk,iproute2,openssh-server,sudo,dracut-core,cpio,openssl
if [ "$variant" = waagent ]; then
	include=$include,python3,waagent,eject
fi

rm -rf "$rootfs"
mkdir -p "$out/debootstrap-cache"
debootstrap --variant=minbase --cache-dir="$(cd "$out/debootstrap-cache" && pwd)" \
	--include="$include" "$suite" "$rootfs" "$mirror" >"$out/debootstrap.log" 2>&1 || {
	tail -20 "$out/debootstrap.log" >&2
	exit 1
}

# The kernel, with an initramfs that only needs to find a virtio root.
mkdir -p "$rootfs/etc/initramfs-tools/conf.d"
printf 'MODULES=list\nCOMPRESS=gzip\n' >"$rootfs/etc/initramfs-tools/conf.d/e2e.conf"
printf 'virtio_pci\nvirtio_blk\nvirtio_scsi\next4\n' >"$rootfs/etc/initramfs-tools/modules"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"
trap 'umount "$rootfs/proc" 2>/dev/null || true' EXIT
chroot "$rootfs" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends linux-image-amd64 initramfs-tools && apt-get clean' \
	>"$out/kernel.log" 2>&1 || {
	tail -20 "$out/kernel.log" >&2
	exit 1
}
umount "$rootfs/proc"
trap - EXIT

kver=$(ls "$rootfs/usr/lib/modules")
mods=$rootfs/usr/lib/modules/$kver/kernel
rm -rf "$mods/sound" "$mods/drivers/gpu" "$mods/drivers/net/wireless" "$mods/drivers/media" \
	"$mods/drivers/infiniband" "$mods/drivers/staging" "$mods/drivers/bluetooth" "$mods/drivers/iio" \
	"$mods/drivers/hid" "$mods/drivers/usb" "$mods/drivers/input/touchscreen" "$mods/net/wireless" \
	"$mods/net/mac80211" "$mods/net/bluetooth"
chroot "$rootfs" depmod "$kver"
rm -rf "$rootfs/usr/lib/firmware"/* "$rootfs/usr/share/doc"/* "$rootfs/usr/share/man"/* \
	"$rootfs/var/lib/apt/lists"/* "$rootfs/var/cache/apt"/*.bin

# The machine a provisioning agent meets on first boot: no host name of
# its own, no host keys (sshd-keygen makes them unless the agent did),
# no machine id, DHCP on every wired NIC through networkd.
echo localhost >"$rootfs/etc/hostname"
printf '127.0.0.1 localhost\n' >"$rootfs/etc/hosts"
echo '/dev/vda / ext4 defaults,errors=remount-ro 0 1' >"$rootfs/etc/fstab"
rm -f "$rootfs"/etc/ssh/ssh_host_*
: >"$rootfs/etc/machine-id"
chroot "$rootfs" passwd -d root >/dev/null
mkdir -p "$rootfs/etc/systemd/network"
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=ipv4\n' >"$rootfs/etc/systemd/network/10-wired.network"
chroot "$rootfs" systemctl -q enable systemd-networkd systemd-networkd-wait-online
# agetty on the serial console hangs up the tty test output goes to.
chroot "$rootfs" systemctl -q mask serial-getty@ttyS0.service getty@tty1.service \
	apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer
if [ "$variant" = waagent ]; then
	# Debian's unit only starts under Hyper-V.
	mkdir -p "$rootfs/etc/systemd/system/walinuxagent.service.d"
	printf '[Unit]\nConditionVirtualization=\n' >"$rootfs/etc/systemd/system/walinuxagent.service.d/e2e.conf"
	# WALinuxAgent finds the wireserver by its route (Azure's DHCP adds
	# one; QEMU's names no router, so it is on-link), else by sending DHCP
	# requests itself.
	printf '[Route]\nDestination=168.63.129.16/32\n' >>"$rootfs/etc/systemd/network/10-wired.network"
	# It provisions: Debian ships it waiting for cloud-init.
	sed -i 's/^Provisioning.Agent=.*/Provisioning.Agent=waagent/' "$rootfs/etc/waagent.conf"
	grep -q '^Provisioning.Agent=waagent$' "$rootfs/etc/waagent.conf"
fi

cp "$rootfs/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$rootfs/boot/initrd.img-$kver" "$out/initrd.img"
echo "$kver" >"$out/kernel-version"
