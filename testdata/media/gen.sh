#!/bin/sh
# Regenerates the provisioning-media test images in this directory from content/ with real tools:
# genisoimage (package genisoimage) and mkudffs (package udftools). No mount, no root needed.
#
#   genisoimage-udf.img.gz     genisoimage -udf: ISO9660 + UDF 1.02 bridge (File Entries, short_ad)
#   genisoimage-udf-jr.img.gz  genisoimage -udf -J -R: the same with Joliet and Rock Ridge
#   pure-udf.img.gz            genisoimage-udf with its ISO9660 descriptors removed: sectors 16-20
#                              (CD001 primary + terminator, BEA01, NSR02, TEA01) zeroed and
#                              BEA01/NSR02/TEA01 rewritten at 16-18, so only UDF recognises it
#   iso9660.img.gz             plain ISO9660, no UDF, no extensions (names become OVF_ENV.XML;1)
#   mkudffs-2.01.img.gz        mkudffs UDF 2.01 defaults: Extended File Entries, in-ICB, empty
#   mkudffs-2.01-noefe.img.gz  mkudffs UDF 2.01 --noefe: File Entries, empty
#   mkudffs-2.01-512.img.gz    as mkudffs-2.01 with 512-byte blocks
#   mkudffs-2.01-4096.img.gz   as mkudffs-2.01 with 4096-byte blocks (volume recognition every 4096 bytes)
#   mkudffs-cdrw.img.gz        mkudffs --media-type=cdrw: a sparable (type 2) partition map, which
#                              the reader rejects with a clear error
#
# content/ holds ovf-env.xml (a made-up Azure OVF: user azureuser, host media-test, a fake
# password), CustomData.bin and sub/big.txt (8600 bytes, several sectors). mkudffs cannot add files.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

geniso() { # output, options...
	out=$1
	shift
	genisoimage -quiet -V AZINIT_TEST -o "$tmp/$out" "$@" content
}
geniso genisoimage-udf.img -udf
geniso genisoimage-udf-jr.img -udf -J -R
geniso iso9660.img

cp "$tmp/genisoimage-udf.img" "$tmp/pure-udf.img"
python3 - "$tmp/pure-udf.img" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(16 * 2048)
    f.write(bytes(5 * 2048))
    for i, ident in enumerate([b"BEA01", b"NSR02", b"TEA01"]):
        f.seek((16 + i) * 2048)
        f.write(b"\x00" + ident + b"\x01")
EOF

mkudf() { # output, blocks, options...
	out=$1
	n=$2
	shift 2
	mkudffs --new-file --label=AZINIT_TEST --uuid=0123456789abcdef "$@" "$tmp/$out" "$n" >/dev/null
}
mkudf mkudffs-2.01.img 300 --media-type=hd --blocksize=2048 --udfrev=2.01
mkudf mkudffs-2.01-noefe.img 300 --media-type=hd --blocksize=2048 --udfrev=2.01 --noefe
mkudf mkudffs-2.01-512.img 600 --media-type=hd --blocksize=512 --udfrev=2.01
mkudf mkudffs-2.01-4096.img 300 --media-type=hd --blocksize=4096 --udfrev=2.01
mkudf mkudffs-cdrw.img 2000 --media-type=cdrw

for f in "$tmp"/*.img; do
	gzip -9 -n -c "$f" >"$(basename "$f").gz"
done
ls -l ./*.img.gz
