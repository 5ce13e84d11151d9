#!/bin/bash
# Builds the guest image of the edge-setup VM tests. Called by vmtest/image.py, which
# passes the package lists (see there) and caches the result; run as root.
#
#   OUT             output directory (created): rootfs.img (the containers'), rootfs-vm.img,
#                   vmlinuz, initrd.img, manifest
#   BASE_PACKAGES   comma-separated packages installed in the image (debootstrap --include)
#   REPO_PACKAGES   space-separated packages whose .debs (with every missing dependency)
#                   go into the offline repository /var/local/edge-repo inside the image
#   MIRROR, SECURITY_MIRROR, SUITE   where the packages come from (SECURITY_MIRROR empty:
#                   none)
#   VM_PREINSTALL_DEPENDENCIES_OF  space-separated packages whose dependencies (not they
#                   themselves) the VMs' root file system has installed (rootfs-vm.img)
#   GUEST_FILES     directory with the harness files copied into the guest
#   DISK_FREE_MB    free space left on the root file system
set -euo pipefail

: "${OUT:?}" "${BASE_PACKAGES:?}" "${REPO_PACKAGES:?}" "${GUEST_FILES:?}" "${VM_PREINSTALL_DEPENDENCIES_OF:?}"
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR-http://deb.debian.org/debian-security}
SUITE=${SUITE:-bookworm}
DISK_FREE_MB=${DISK_FREE_MB:-3072}
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8

work=$(mktemp -d "${OUT%/*}/build.XXXXXX")
root=$work/root
mounted=()
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
step() { printf '[image %4ss] %s\n' "$SECONDS" "$*"; }
in_root() { chroot "$root" "$@"; }

step "debootstrap $SUITE (minbase + $BASE_PACKAGES)"
debootstrap --variant=minbase --include="$BASE_PACKAGES" --components=main \
    "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" "$root/debootstrap/debootstrap.log" 2>/dev/null
    exit 1
}

in_root apt-get clean   # debootstrap leaves the base system's .debs behind

step "configure the guest"
# Keep installs lean and fast in the guest: no documentation, man pages or translations.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-vmt-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
rm -rf "$root"/usr/share/doc/*/[!c]* "$root"/usr/share/man/* "$root"/usr/share/info/*
# No fsync per unpacked file: a guest is thrown away after its run, and under TCG the syncs
# cost bookworm's VNC install 7 % (303 s against 282 s, two VMs side by side).
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/02-vmt-unsafe-io"
echo appliance >"$root/etc/hostname"
# Deliberately no line for "appliance": edge-setup must make its own host name resolvable.
cat >"$root/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
install -m 0755 "$GUEST_FILES/vmt-backdoor" "$root/usr/local/sbin/vmt-backdoor"
install -m 0644 "$GUEST_FILES/vmt-backdoor.service" "$root/etc/systemd/system/vmt-backdoor.service"
install -m 0644 "$GUEST_FILES/vmt-9p.service" "$root/etc/systemd/system/vmt-9p.service"
install -m 0644 "$GUEST_FILES/vmt-modules.conf" "$root/etc/modules-load.d/vmt.conf"
install -m 0644 "$GUEST_FILES/50-vmt-wired.network" "$root/etc/systemd/network/50-vmt-wired.network"
mkdir -p "$root/etc/systemd/system/sysinit.target.wants"
ln -sf /etc/systemd/system/vmt-backdoor.service "$root/etc/systemd/system/sysinit.target.wants/"
ln -sf /etc/systemd/system/vmt-9p.service "$root/etc/systemd/system/multi-user.target.wants/"
# hvc0 belongs to the backdoor, not to a login prompt; timers that run apt would race the tests.
# e2scrub_reap looks for LVM snapshots left by e2scrub (there is no LVM here): 7.5 s of every
# TCG boot (systemd-analyze blame).
for unit in serial-getty@hvc0.service apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
in_root systemctl enable systemd-networkd.service >/dev/null 2>&1
# The root account stays locked: the harness reaches the guest through the backdoor only.

step "download the offline repository packages"
for fs in proc sys dev dev/pts; do
    mount --bind "/$fs" "$root/$fs"
    mounted+=("$root/$fs")
done
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# SECURITY_MIRROR empty: the release's security archive is left out (see vmtest/image.py)
if [ -n "$SECURITY_MIRROR" ]; then
    cat >>"$root/etc/apt/sources.list.d/debian.sources" <<EOF

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
in_root apt-get -q update >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; exit 1; }
# Recommends are downloaded too (apt installs them by default), so the repository satisfies
# an install with or without --no-install-recommends.
# shellcheck disable=SC2086
in_root apt-get -q -y --download-only install $REPO_PACKAGES >>"$work/apt.log" 2>&1 ||
    { tail -n 40 "$work/apt.log"; exit 1; }

step "build the offline repository /var/local/edge-repo"
repo=$root/var/local/edge-repo
mkdir -p "$repo"
mv "$root"/var/cache/apt/archives/*.deb "$repo/"
# Each package's data member uncompressed: the same data.tar, control member and member
# order, which dpkg reads as it reads data.tar.xz. Under TCG, decompressing xz was a sixth of
# a guest's install of the VNC package set (bullseye: 190 s with xz, 158 s without).
unpacked=$work/unpacked
mkdir "$unpacked"
for deb in "$repo"/*.deb; do
    rm -f "$unpacked"/*
    (cd "$unpacked" && ar x "$deb")
    if [ -e "$unpacked/data.tar.xz" ]; then
        xz -d "$unpacked/data.tar.xz"
    elif [ -e "$unpacked/data.tar.gz" ]; then
        gzip -d "$unpacked/data.tar.gz"
    else
        continue
    fi
    control=$(cd "$unpacked" && echo control.tar*)
    rm "$deb"
    (cd "$unpacked" && ar rcD "$deb" debian-binary "$control" data.tar)
done
(cd "$repo" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
rm "$root/etc/apt/sources.list.d/debian.sources"
# No name server: the guest is offline, and a lookup must fail at once rather than after
# the resolver's time-outs (QEMU's restricted user network answers no DNS).
echo '# no name server: the test VM is offline' >"$root/etc/resolv.conf"
echo 'deb [trusted=yes] file:/var/local/edge-repo ./' >"$root/etc/apt/sources.list.d/edge-repo.list"
in_root apt-get clean
rm -rf "$root"/var/lib/apt/lists/*
in_root apt-get -q update >>"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log"; exit 1; }
# Proof that the offline repository is complete: a simulated install with no network source.
# shellcheck disable=SC2086
in_root apt-get -q -s install $REPO_PACKAGES >"$work/simulate.log" 2>&1 ||
    { tail -n 40 "$work/simulate.log"; exit 1; }

step "make a small initrd and check it"
kver=$(basename "$(ls -d "$root"/lib/modules/*)")
# Only what mounts the root file system (6 MB against Debian's 36 MB of MODULES=most): under
# TCG the kernel unpacks and udev probes every module of the initrd at each boot.
printf 'MODULES=list\nCOMPRESS=gzip\n' >"$root/etc/initramfs-tools/conf.d/vmt.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >>"$root/etc/initramfs-tools/modules"
in_root update-initramfs -u -k "$kver" >>"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log"; exit 1; }
in_root lsinitramfs "/boot/initrd.img-$kver" >"$work/initrd.list"
# Each is a module in the initrd or built into the kernel (trixie's 6.12 builds virtio_pci in).
for module in virtio_blk virtio_pci ext4; do
    grep -q "/$module.ko" "$work/initrd.list" || grep -q "/$module.ko" "$root/lib/modules/$kver/modules.builtin" ||
        { echo "initrd lacks $module, and the kernel does not build it in" >&2; exit 1; }
done
for fs in dev/pts dev sys proc; do umount "$root/$fs"; done
mounted=()

make_rootfs() { # FILE: an ext4 image of $root with DISK_FREE_MB free; prints its size in MB
    local used_mb size_mb
    used_mb=$(du -sm "$root" | cut -f1)
    size_mb=$((used_mb * 12 / 10 + DISK_FREE_MB))
    mkfs.ext4 -q -F -L root -d "$root" "$1" "${size_mb}M" >/dev/null
    echo "$size_mb"
}

step "make the ext4 root file system"
mkdir -p "$OUT"
cp "$root/boot/vmlinuz-$kver" "$OUT/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$OUT/initrd.img"
size_mb=$(make_rootfs "$OUT/rootfs.img")

# The VMs' root file system: the same tree with the dependencies of the VNC package set
# installed here, natively, and marked automatic as apt would (see vmtest/image.py's
# vm_preinstalled). The set itself stays for the guest's `edge-setup vnc` to install.
step "the VMs' root file system: the dependencies of $VM_PREINSTALL_DEPENDENCIES_OF"
read -ra vnc_set <<<"$VM_PREINSTALL_DEPENDENCIES_OF"
for fs in proc sys dev dev/pts; do
    mount --bind "/$fs" "$root/$fs"
    mounted+=("$root/$fs")
done
in_root apt-get -q -s install "${vnc_set[@]}" >"$work/preinstall.log" 2>&1 ||
    { tail -n 40 "$work/preinstall.log"; exit 1; }
mapfile -t dependencies < <(awk '/^Inst /{print $2}' "$work/preinstall.log" |
    grep -vxF -f <(printf '%s\n' "${vnc_set[@]}"))
in_root apt-get -q -y --no-install-recommends install "${dependencies[@]}" >>"$work/preinstall.log" 2>&1 ||
    { tail -n 40 "$work/preinstall.log"; exit 1; }
in_root apt-mark -q auto "${dependencies[@]}" >/dev/null
# The set itself is what the guest installs; a member another package depends on comes in
# here (bullseye: dbus-x11, a session bus for the desktop libraries), as it would on an
# appliance that has those. TigerVNC's server never does: without it the smoke installs nothing.
came_in=()
for package in "${vnc_set[@]}"; do
    # shellcheck disable=SC2016 # the format is dpkg-query's
    if in_root dpkg-query -W -f '${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed; then
        came_in+=("$package")
    fi
done
case " ${came_in[*]} " in
*" tigervnc-standalone-server "*)
    echo "tigervnc-standalone-server came in as a dependency: the VMs would not install VNC" >&2
    exit 1
    ;;
esac
in_root apt-get clean
for fs in dev/pts dev sys proc; do umount "$root/$fs"; done
mounted=()
vm_size_mb=$(make_rootfs "$OUT/rootfs-vm.img")
{
    echo "kernel=$kver"
    echo "rootfs_mb=$size_mb"
    echo "vm_rootfs_mb=$vm_size_mb"
    echo "vm_preinstalled=${#dependencies[@]}"
    echo "vm_preinstalled_of_the_set=${came_in[*]}"
    echo "used_mb=$(du -sm "$root" | cut -f1)"
    echo "repo_debs=$(find "$repo" -name '*.deb' | wc -l)"
    echo "repo_mb=$(du -sm "$repo" | cut -f1)"
    echo "build_seconds=$SECONDS"
} >"$OUT/manifest"
step "done: $(tr '\n' ' ' <"$OUT/manifest")"
