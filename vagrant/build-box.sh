#!/usr/bin/env bash
# Builds a Debian 12 Vagrant box for the libvirt provider from Debian packages
# only (no Vagrant Cloud): debootstrap -> raw disk with GRUB -> qcow2 -> .box,
# then registers it as mesos-rs/debian12. Needs root.
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
  [[ -n ${made_node:-} ]] && rm -f "$made_node"
  rm -rf "$work"
}

make_disk() {
  truncate -s "${size_gb}G" "$work/disk.raw"
  printf 'label: dos\n,,L,*\n' | sfdisk -q "$work/disk.raw"
  loop=$(losetup --show -f -P "$work/disk.raw")
  part=${loop}p1
  # Without udev (containers, minimal VMs) the kernel knows the partition but
  # nobody creates its device node: make it from sysfs.
  if [[ ! -b $part ]]; then
    local name=${loop#/dev/}
    for _ in $(seq 20); do [[ -r /sys/block/$name/${name}p1/dev ]] && break; sleep 0.1; done
    IFS=: read -r major minor <"/sys/block/$name/${name}p1/dev"
    mknod "$part" b "$major" "$minor"
    made_node=$part
  fi
  mkfs.ext4 -q -L root "$part"
  mount "$part" "$root"
}

install_system() {
  debootstrap --variant=minbase \
    --include=systemd-sysv,linux-image-amd64,grub-pc,openssh-server,sudo,curl,ca-certificates,iproute2,procps,rsync,busybox-static \
    bookworm "$root" "$mirror"
  for m in dev dev/pts proc sys; do mount --bind "/$m" "$root/$m"; done
  echo "vagrant" >"$root/etc/hostname"
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
  # Serial console too, so a headless boot can be watched.
  sed -i 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT="console=tty0 console=ttyS0"/' "$root/etc/default/grub"
  chroot "$root" grub-install --target=i386-pc "$loop"
  chroot "$root" update-grub
  chroot "$root" apt-get clean
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
