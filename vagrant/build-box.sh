#!/usr/bin/env bash
# Builds a Debian 12 Vagrant box for the libvirt provider from Debian packages
# only (no Vagrant Cloud): debootstrap -> raw disk with extlinux -> qcow2 -> .box,
# then registers it as mesos-rs/debian12. Needs root.
# Boots with extlinux; the disk has one bootable MBR partition.
#
#   vagrant/build-box.sh [OUTPUT_DIR]     # default: vagrant/.box
#
# The box follows Vagrant's base box conventions: user vagrant/vagrant with
# passwordless sudo and Vagrant's well-known insecure public key (Vagrant
# replaces it with a fresh key on first `vagrant up`), sshd, DHCP on every
# ethernet interface via systemd-networkd. Debian 12 boots with the unified
# cgroup v2 hierarchy, which is what the agent's cgroups v2 driver targets.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/.box}
name=${BOX_NAME:-mesos-rs/debian12}
size_gb=${BOX_SIZE_GB:-8}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Vagrant's published insecure key (vagrant/keys/vagrant.pub).
insecure_key='ssh-rsa AAAAB3NzaC1yc2EAAAABIwAAAQEA6NF8iallvQVp22WDkTkyrtvp9eWW6A8YVr+kz4TjGYe7gHzIw+niNltGEFHzD8+v1I2YJ6oXevct1YeS0o9HZyN1Q9qgCgzUFtdOKLv6IedplqoPkcmF0aYet2PkEDo3MlTBckFXPITAMzF8dJSIFo9D8HfdOV0IAdx4O7PtixWKn5y2hMNG0zQPyUecp4pzC6kivAIhyfHilFR61RGL+GPXQ2MWZWFYbAGjyiYJnAmCP3NOTd0jMZEnDkbUvxhMmBYSdETk1rRgm+R4LOzFUGaHqHDLKLX+FIPKcF96hrucXzcWyLbIbEgE98OHlnVYCzRdK8jlqm8tehUc9c9WhQ== vagrant insecure public key'

log() { printf '== %s\n' "$*"; }

need_packages() {
  local missing=()
  for p in debootstrap qemu-utils e2fsprogs fdisk; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
}

cleanup() {
  set +e
  for m in dev/pts dev proc sys ""; do
    mountpoint -q "$root/$m" && umount -l "$root/$m"
  done
  [[ -n ${loop:-} ]] && losetup -d "$loop"
  rm -rf "$work"
}

make_disk() {
  truncate -s "${size_gb}G" "$work/disk.raw"
  # One bootable partition from 1 MiB. The filesystem is reached through a
  # loop device at that offset, so no partition device nodes (udev) are needed.
  printf 'label: dos\nstart=2048,type=83,bootable\n' | sfdisk -q "$work/disk.raw"
  loop=$(losetup --show -f -o $((2048 * 512)) "$work/disk.raw")
  mkfs.ext4 -q -L root "$loop"
  mount "$loop" "$root"
}

install_system() {
  debootstrap --variant=minbase \
    --include=systemd-sysv,linux-image-amd64,extlinux,syslinux-common,openssh-server,sudo,curl,ca-certificates,iproute2,procps,rsync,busybox-static \
    bookworm "$root" "$mirror"
  for m in dev dev/pts proc sys; do mount --bind "/$m" "$root/$m"; done
  echo "vagrant" >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 vagrant\n' >"$root/etc/hosts"
  echo "LABEL=root / ext4 defaults 0 1" >"$root/etc/fstab"
  cat >"$root/etc/systemd/network/10-dhcp.network" <<EOT
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOT
  chroot "$root" systemctl enable systemd-networkd ssh >/dev/null
  chroot "$root" useradd -m -s /bin/bash vagrant
  echo vagrant:vagrant | chroot "$root" chpasswd
  echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/vagrant"
  chmod 0440 "$root/etc/sudoers.d/vagrant"
  install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
  echo "$insecure_key" >"$root/home/vagrant/.ssh/authorized_keys"
  chroot "$root" chown vagrant:vagrant /home/vagrant/.ssh/authorized_keys
  chmod 0600 "$root/home/vagrant/.ssh/authorized_keys"
  echo 'UseDNS no' >"$root/etc/ssh/sshd_config.d/vagrant.conf"
  install_bootloader
  chroot "$root" apt-get clean
}

# extlinux boots the ext4 filesystem directly (it installs through the
# mounted filesystem, whatever device backs it); syslinux's MBR code jumps to
# the active partition.
install_bootloader() {
  local kernel initrd
  kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -1)
  initrd=$(cd "$root/boot" && ls initrd.img-* | sort -V | tail -1)
  install -d "$root/boot/extlinux"
  cat >"$root/boot/extlinux/extlinux.conf" <<EOT
DEFAULT debian
TIMEOUT 1
LABEL debian
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=LABEL=root ro console=tty0 console=ttyS0
EOT
  chroot "$root" extlinux --install /boot/extlinux
  dd if="$root/usr/lib/syslinux/mbr/mbr.bin" of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
}

package_box() {
  mkdir -p "$out"
  qemu-img convert -O qcow2 "$work/disk.raw" "$out/box.img"
  cat >"$out/metadata.json" <<EOT
{"provider": "libvirt", "format": "qcow2", "virtual_size": $size_gb}
EOT
  cat >"$out/Vagrantfile" <<'EOT'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
EOT
  tar -C "$out" -czf "$out/mesos-rs-debian12.box" metadata.json Vagrantfile box.img
}

main() {
  [[ $(id -u) -eq 0 ]] || { echo "build-box.sh needs root (loop devices, debootstrap)" >&2; exit 1; }
  need_packages
  work=$(mktemp -d)
  root=$work/root
  mkdir -p "$root"
  trap cleanup EXIT
  log "disk image ($size_gb GB)"; make_disk
  log "debootstrap bookworm"; install_system
  umount -l "$root/dev/pts" "$root/dev" "$root/proc" "$root/sys"; umount "$root"
  log "packaging $out/mesos-rs-debian12.box"; package_box
  if command -v vagrant >/dev/null; then
    vagrant box add --force --name "$name" "$out/mesos-rs-debian12.box"
  else
    echo "vagrant is not installed; add the box later with: vagrant box add --name $name $out/mesos-rs-debian12.box"
  fi
}

main "$@"
