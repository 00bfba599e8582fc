#!/usr/bin/env bash
# Builds the lab's Debian guest image from Debian packages: a small qcow2 that boots a Debian
# kernel under KVM with cloud-init (NoCloud), OpenSSH, the NFS client, stress-ng and iperf3.
#
#   deploy/scripts/build-guest-image.sh [--print-path] [--force]
#
# The recipe is this script, deploy/lab/image/ (package list, files copied into the image,
# boot loader configuration) and the Debian apt sources it installs from. Its hash names the
# image, build/guest-image/debian-<hash>.qcow2, so an unchanged recipe is never rebuilt and a
# changed one gives a new file; build/guest-image/debian.qcow2 links to the current one.
# --print-path prints that path and builds nothing. The last stdout line is JSON.
#
# Disk layout (MBR, BIOS boot, no loop device or mount needed to build it):
#   partition 1: FAT16, 64 MiB, SYSLINUX with the kernel and initramfs
#   partition 2: ext4 root (made with mkfs.ext4 -d from the unpacked tree), the rest of 2 GiB
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RECIPE_DIR="$ROOT_DIR/deploy/lab/image"
OUT_DIR="${VMGRID_IMAGE_DIR:-$ROOT_DIR/build/guest-image}"
SUITE="${VMGRID_IMAGE_SUITE:-bookworm}"
SOURCES="${VMGRID_IMAGE_SOURCES:-}"
DISK_MIB=2048
BOOT_START_SECTOR=2048
BOOT_MIB=64
# systemd generators that find nothing to do in a lab guest: each costs seconds under TCG at
# boot (systemd runs them all before it loads units) and at every daemon-reload.
UNUSED_GENERATORS=(systemd-gpt-auto-generator systemd-cryptsetup-generator
    systemd-integritysetup-generator systemd-veritysetup-generator
    systemd-hibernate-resume-generator systemd-system-update-generator systemd-debug-generator
    systemd-rc-local-generator systemd-run-generator systemd-sysv-generator)
BUILD_PACKAGES=(mmdebstrap syslinux syslinux-common mtools dosfstools e2fsprogs qemu-utils fdisk)

print_path=0
force=0
for arg in "$@"; do
    case "$arg" in
        --print-path) print_path=1 ;;
        --force) force=1 ;;
        *) echo "build-guest-image: error: unknown argument '$arg'; accepted: --print-path --force" >&2; exit 2 ;;
    esac
done

# The Debian archive that apt uses here (deb822 or one-line format).
if [ -z "$SOURCES" ]; then
    for candidate in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
        if [ -s "$candidate" ] && grep -q 'debian' "$candidate"; then SOURCES="$candidate"; break; fi
    done
fi
if [ -z "$SOURCES" ] || [ ! -s "$SOURCES" ]; then
    echo "build-guest-image: error: no Debian apt sources found (set VMGRID_IMAGE_SOURCES to a sources file)" >&2
    exit 2
fi

recipe_hash() {
    {
        cat "${BASH_SOURCE[0]}"
        echo "suite=$SUITE"
        grep -v '^[[:space:]]*#' "$SOURCES"
        (cd "$RECIPE_DIR" && find . -type f | LC_ALL=C sort | while read -r f; do
            echo "== $f $(stat -c %a "$f")"; cat "$f"; done)
    } | sha256sum | cut -c1-12
}

HASH="$(recipe_hash)"
IMAGE="$OUT_DIR/debian-$HASH.qcow2"
LINK="$OUT_DIR/debian.qcow2"

describe() {
    local built="$1" seconds="$2"
    local bytes
    bytes="$(stat -c %s "$IMAGE")"
    printf '{"image": "%s", "recipe_hash": "%s", "built": %s, "build_s": %s, "size_bytes": %s}\n' \
        "$IMAGE" "$HASH" "$built" "$seconds" "$bytes"
}

if [ "$print_path" -eq 1 ]; then
    echo "$IMAGE"
    exit 0
fi
mkdir -p "$OUT_DIR"
if [ -f "$IMAGE" ] && [ "$force" -eq 0 ]; then
    ln -sfn "$(basename "$IMAGE")" "$LINK"
    describe false 0
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "build-guest-image: error: building the image needs root (mmdebstrap, file owners); run it as root" >&2
    exit 2
fi
"$ROOT_DIR/deploy/scripts/install-system-deps.sh" "${BUILD_PACKAGES[@]}"

started=$(date +%s)
WORK="$(mktemp -d "$OUT_DIR/.build-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
TREE="$WORK/root"
RAW="$WORK/disk.raw"
mapfile -t PACKAGES < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$RECIPE_DIR/packages.txt" | grep -v '^$')
include="$(IFS=,; echo "${PACKAGES[*]}")"

echo "build-guest-image: installing ${#PACKAGES[@]} packages from $SOURCES ($SUITE) into $TREE" >&2
mmdebstrap --variant=minbase --include="$include" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='force-confold' \
    --setup-hook="sync-in '$RECIPE_DIR/files' /" \
    --customize-hook='chroot "$1" systemctl enable systemd-networkd.service vmgrid-seed.service' \
    --customize-hook='touch "$1"/etc/cloud/cloud-init.disabled' \
    --customize-hook="mkdir -p \"\$1\"/etc/systemd/system-generators; for g in ${UNUSED_GENERATORS[*]}; do ln -sf /dev/null \"\$1\"/etc/systemd/system-generators/\$g; done" \
    --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service e2scrub_all.timer fstrim.timer rpcbind.service rpcbind.socket rpc-statd.service man-db.timer' \
    --customize-hook='chroot "$1" systemctl mask systemd-binfmt.service proc-sys-fs-binfmt_misc.automount sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount modprobe@drm.service modprobe@efi_pstore.service modprobe@fuse.service modprobe@loop.service modprobe@dm_mod.service getty@tty1.service' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    --customize-hook=': > "$1"/etc/machine-id; rm -f "$1"/var/lib/dbus/machine-id' \
    --customize-hook='rm -f "$1"/etc/apt/sources.list; rm -rf "$1"/etc/apt/sources.list.d/* "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    --customize-hook='rm -rf "$1"/var/log/*.log "$1"/var/cache/debconf/*-old "$1"/tmp/*' \
    --customize-hook='echo lab-guest > "$1"/etc/hostname' \
    "$SUITE" "$TREE" "$SOURCES" >&2

kernel="$(ls "$TREE"/boot/vmlinuz-* | sort -V | tail -1)"
initrd="$(ls "$TREE"/boot/initrd.img-* | sort -V | tail -1)"

echo "build-guest-image: writing the disk" >&2
truncate -s "${DISK_MIB}M" "$RAW"
boot_sectors=$((BOOT_MIB * 2048))
root_start=$((BOOT_START_SECTOR + boot_sectors))
root_sectors=$((DISK_MIB * 2048 - root_start))
sfdisk --quiet "$RAW" <<EOF
label: dos
start=$BOOT_START_SECTOR, size=$boot_sectors, type=6, bootable
start=$root_start, size=$root_sectors, type=83
EOF
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$RAW" bs=440 count=1 conv=notrunc status=none
mkfs.fat -F 16 -n BOOT --offset "$BOOT_START_SECTOR" "$RAW" $((BOOT_MIB * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
boot="$RAW@@$((BOOT_START_SECTOR * 512))"
mcopy -i "$boot" "$kernel" ::/vmlinuz
mcopy -i "$boot" "$initrd" ::/initrd.img
mcopy -i "$boot" "$RECIPE_DIR/syslinux.cfg" ::/syslinux.cfg
syslinux --offset $((BOOT_START_SECTOR * 512)) --install "$RAW"
mkfs.ext4 -q -L root -E offset=$((root_start * 512)) -d "$TREE" "$RAW" $((root_sectors / 2))k

qemu-img convert -c -O qcow2 "$RAW" "$WORK/disk.qcow2"
chmod 0644 "$WORK/disk.qcow2"
mv "$WORK/disk.qcow2" "$IMAGE"
ln -sfn "$(basename "$IMAGE")" "$LINK"
# Images of older recipes are dropped: only the current one is kept.
find "$OUT_DIR" -maxdepth 1 -name 'debian-*.qcow2' ! -name "$(basename "$IMAGE")" -delete
describe true $(($(date +%s) - started))
