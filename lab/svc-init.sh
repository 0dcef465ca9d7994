#!/usr/bin/env bash
# PID 1 of the lab's services namespace (started by lab/provision.py, never by hand):
#   ip netns exec <pfx>-svc unshare --mount --uts --ipc --pid --fork --kill-child --propagation private \
#       bash lab/svc-init.sh SVC_DIR
# Runs the Salt master; lab/provision.py starts MariaDB, RabbitMQ and Keystone (lab.services) in here with
# nsenter, so every daemon of the namespace, even one that double-forks (epmd), dies with this PID 1.
set -euo pipefail
dir=$1
: "${LAB_VENV:?LAB_VENV (the Salt venv) must be set}"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8

if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/2/ns/net)" ]; then  # kthreadd: host netns
    echo "svc-init: refusing to run in the host network namespace" >&2; exit 1
fi
read -r hostpid _ < /proc/self/stat
hostname svc
mount -t proc proc /proc
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
ip link set lo up
echo "$hostpid" > "$dir/init.pid"

master=
shutdown() {
    trap '' TERM INT
    [ -n "$master" ] && kill -TERM "$master" 2>/dev/null && wait "$master" 2>/dev/null
    exit 0
}
trap shutdown TERM INT

PYTHONWARNINGS=ignore::DeprecationWarning "$LAB_VENV/bin/salt-master" -c "$dir/salt" --log-level=quiet &
master=$!
while :; do sleep 3600 & wait $! || true; done
