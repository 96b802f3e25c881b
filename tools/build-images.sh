#!/usr/bin/env bash
# Build the two local test images from nothing (no image can be pulled):
#   ringrift/vm         Debian bookworm, systemd as PID 1 (Nebius/Vultr VMs, Hetzner metal)
#   ringrift/container  Debian bookworm, no systemd; PID 1 runs the start hook (Vast/RunPod)
# Both carry python3 (+venv), the machine's CA bundle and pip pointed at it, and sshd: the
# simulated fleet is reached over SSH like the real one. No host key is baked in: each node
# generates its own at first boot (ssh-keygen -A), so every run has fresh keys. The vm image
# also has sudo and an `ubuntu` login with passwordless sudo (Nebius/Vultr/AWS images); the
# container image has no sudo at all, like many Vast/RunPod images: a root node must never need it.
# Images are tagged with a hash of their recipe and rebuilt only when it changes;
# `:latest` always points at the current recipe.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${RINGRIFT_IMAGE_CACHE:-/var/cache/ringrift-images}
suite=bookworm
ca_bundle=${RINGRIFT_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
common_pkgs=python3,python3-venv,python3-packaging,ca-certificates,procps,iproute2,logrotate,openssh-server
vm_pkgs=$common_pkgs,systemd,systemd-sysv,dbus,sudo

log() { printf '[build-images] %s\n' "$*" >&2; }

"$here/ensure-docker.sh"

# The archive this machine already uses, read from its apt sources (deb822 or
# one-line format): the repo names no mirror of its own.
mirror_url() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v suite="$suite" '
            /^URIs:/ {uri=$2}
            /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == suite) ok=1}
            /^$/ {if (ok && uri) {print uri; done=1; exit} ok=0; uri=""}
            END {if (!done && ok && uri) print uri}' "$f"
    done
    grep -hE "^deb[[:space:]]+[^[:space:]]+[[:space:]]+$suite[[:space:]]" \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' || true
}
mirror=$(mirror_url | head -n 1 || true)
if [ -z "$mirror" ]; then
    log "no apt source for $suite found in /etc/apt/sources.list{,.d}; cannot debootstrap"
    exit 1
fi

recipe_hash=$( { cat "$0" "$here/images/container-init" "$here/images/sshd.conf"; echo "$vm_pkgs"; cat "$ca_bundle"; } \
    | sha256sum | cut -c1-12)

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if have_image "ringrift/vm:$recipe_hash" && have_image "ringrift/container:$recipe_hash"; then
    log "images for recipe $recipe_hash present; nothing to build"
    docker tag "ringrift/vm:$recipe_hash" ringrift/vm:latest
    docker tag "ringrift/container:$recipe_hash" ringrift/container:latest
    exit 0
fi

mkdir -p "$cache/debs"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

make_rootfs() {  # name packages
    local dir="$work/$1"
    log "debootstrap $1 ($2) from the machine's archive"
    debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$2" \
        "$suite" "$dir" "$mirror" >"$work/$1.log" 2>&1 || {
        tail -n 30 "$work/$1.log" >&2
        exit 1
    }
    # TLS to the registries goes through this machine's CA bundle.
    cp "$ca_bundle" "$dir/etc/ssl/certs/ca-certificates.crt"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$dir/etc/pip.conf"
    echo 'PIP_CERT=/etc/ssl/certs/ca-certificates.crt' >>"$dir/etc/environment"
    # sshd: keys only, no host key of the image's own (each node makes its own at boot).
    install -m 0644 "$here/images/sshd.conf" "$dir/etc/ssh/sshd_config.d/ringrift-test.conf"
    rm -f "$dir"/etc/ssh/ssh_host_*
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
}

import() {  # name dir change...
    local name=$1 dir=$2
    shift 2
    tar -C "$dir" -c . | docker import "$@" - "ringrift/$name:$recipe_hash" >/dev/null
    docker tag "ringrift/$name:$recipe_hash" "ringrift/$name:latest"
    log "built ringrift/$name:$recipe_hash"
}

make_rootfs container "$common_pkgs"
install -m 0755 "$here/images/container-init" "$work/container/usr/local/sbin/container-init"
import container "$work/container" \
    --change 'CMD ["/usr/local/sbin/container-init"]' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt'

make_rootfs vm "$vm_pkgs"
# Units that make no sense in a container and slow or block boot.
for unit in getty.target systemd-udevd.service systemd-udev-trigger.service \
    systemd-modules-load.service sys-kernel-debug.mount sys-kernel-tracing.mount \
    systemd-remount-fs.service systemd-firstboot.service; do
    ln -sf /dev/null "$work/vm/etc/systemd/system/$unit"
done
# Host keys at first boot (Debian's ssh.service expects them from the package's postinst).
mkdir -p "$work/vm/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    >"$work/vm/etc/systemd/system/ssh.service.d/host-keys.conf"
# The cloud images' login: `ubuntu` with passwordless sudo, its own home, no key until the demo adds one.
chroot "$work/vm" useradd --create-home --shell /bin/bash --uid 1000 ubuntu
printf 'ubuntu ALL=(ALL) NOPASSWD:ALL\n' >"$work/vm/etc/sudoers.d/90-ubuntu"
chmod 0440 "$work/vm/etc/sudoers.d/90-ubuntu"
import vm "$work/vm" \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'ENV container=docker'

# Older recipes' images are dead weight.
docker images --format '{{.Repository}}:{{.Tag}}' \
    | grep -E '^ringrift/(vm|container):' \
    | grep -vE ":($recipe_hash|latest)$" | xargs -r docker rmi >/dev/null 2>&1 || true
