#!/bin/bash
# dracut module: runs azinit's local stage in the initramfs, against the
# real root at /sysroot, before switch-root: the host name is in place
# before the real root's systemd starts, and the instance and the
# provisioning media are settled. The real root's stages then continue
# from the cache it leaves in /run/azinit.
#
# Not included by default: add it with `dracut --add azinit` or
# add_dracutmodules+=" azinit " in /etc/dracut.conf.d/.

check() {
    require_binaries azinit-local || return 1
    [[ -x $systemdutildir/system-generators/azinit-generator ]] || return 1
    return 255
}

depends() {
    echo systemd
}

installkernel() {
    # The provisioning DVD: the CD-ROM drivers of Hyper-V Gen1 (ATA) and
    # Gen2 (SCSI over VMBus). azinit reads UDF and ISO9660 itself.
    hostonly='' instmods sr_mod cdrom ata_piix hv_vmbus hv_storvsc
}

install() {
    inst_multiple azinit-local mount touch
    # The generator decides here too: it links azinit-initrd.service into
    # initrd.target when azinit runs on this machine.
    inst_simple "$systemdutildir/system-generators/azinit-generator"
    inst_simple "$moddir/azinit-initrd.service" "$systemdsystemunitdir/azinit-initrd.service"
}
