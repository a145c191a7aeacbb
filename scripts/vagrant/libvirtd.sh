#!/usr/bin/env bash
# libvirt for the Vagrant tier on a machine without systemd as PID 1: starts virtlogd and
# libvirtd by hand when they are not running, and stops only what it started, by the pid
# it recorded (never by name). Also makes the tier's own storage pool (down.sh removes it).
#
#   scripts/vagrant/libvirtd.sh start     # idempotent; records what it started
#   scripts/vagrant/libvirtd.sh stop      # stops what `start` started
set -euo pipefail

CACHE=${VNETCTL_VAGRANT_CACHE:-/var/cache/vnetctl-vagrant}
POOL=${VNETCTL_VAGRANT_POOL:-vnetctl-vagrant}
RUN=/run/vnetctl-vagrant
URI=qemu:///system

virsh_() { timeout 60 virsh -q -c "$URI" "$@"; }
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for DESCRIPTION SECONDS COMMAND...: bounded in time, polls every half second
wait_for() {
    local what=$1 limit=$2 deadline
    shift 2
    deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "libvirtd.sh: $what not ready after ${limit}s" >&2
            return 1
        fi
        sleep 0.5
    done
}

start() {
    mkdir -p "$RUN" "$CACHE/pool" "$CACHE/console"
    if ! virsh_ version >/dev/null 2>&1; then
        if ! pgrep -x virtlogd >/dev/null; then
            virtlogd --daemon --pid-file "$RUN/virtlogd.pid"
            wait_for virtlogd 10 alive "$RUN/virtlogd.pid"
            touch "$RUN/virtlogd.ours"
        fi
        libvirtd --daemon --pid-file "$RUN/libvirtd.pid"
        touch "$RUN/libvirtd.ours"
        wait_for libvirtd 60 virsh -q -c "$URI" version
        echo "libvirtd.sh: started libvirtd (pid $(cat "$RUN/libvirtd.pid"))"
    fi
    if ! virsh_ pool-info "$POOL" >/dev/null 2>&1; then
        virsh_ pool-define-as "$POOL" dir --target "$CACHE/pool" >/dev/null
    fi
    if [[ $(virsh_ pool-info "$POOL" | awk '/^State:/ {print $2}') != running ]]; then
        virsh_ pool-start "$POOL" >/dev/null
    fi
}

stop_pid() {  # stop_pid NAME: TERM, then KILL after 20 s, for the pid this script recorded
    local name=$1 pidfile=$RUN/$1.pid pid
    [[ -f $RUN/$name.ours ]] || return 0
    if alive "$pidfile"; then
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        local deadline=$((SECONDS + 20))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "libvirtd.sh: $name (pid $pid) ignored TERM for 20 s: KILL" >&2
            kill -KILL "$pid"
        fi
        echo "libvirtd.sh: stopped $name (pid $pid)"
    fi
    rm -f "$RUN/$name.ours" "$pidfile"
}

stop() {
    stop_pid libvirtd
    stop_pid virtlogd
}

case ${1:-} in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
