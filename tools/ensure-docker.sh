#!/usr/bin/env bash
# Make a Docker engine answer on this machine: install docker.io and debootstrap
# from the distribution when missing, start dockerd in the background when it is
# not running, and wait until it answers. Idempotent; safe to run every time.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }

need_install=()
command -v dockerd >/dev/null 2>&1 || need_install+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_install+=(debootstrap)
if [ "${#need_install[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "missing ${need_install[*]} and not root: install them, then rerun"
        exit 1
    fi
    log "installing ${need_install[*]} from the distribution archive"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${need_install[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
    exit 0
fi

log "starting dockerd in the background (log: /var/log/dockerd.log)"
# setsid: the engine must outlive the shell (and the CI step) that started it.
setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &

for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        log "dockerd answers"
        exit 0
    fi
    sleep 1
done
log "dockerd did not answer within 60 s; last lines of its log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
