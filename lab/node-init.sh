#!/usr/bin/env bash
# PID 1 of one lab controller (started by lab/nodes.py, never by hand):
#   ip netns exec <pfx>-nI unshare --mount --uts --ipc --pid --fork --kill-child --propagation private \
#       bash lab/node-init.sh NAME NODE_DIR RUN_DIR
# It gives the node a private view of the machine (its own /run, /dev/shm, cluster state, logs, and
# copy-on-write /etc, /var, /root and OCF agent directory kept under NODE_DIR/cow, so what the formula
# writes stays inside the node and survives a crash like a disk would), then runs corosync, pacemaker
# and a salt-minion. SIGTERM = graceful stop; SIGKILL = node crash (the whole pid namespace dies).
set -euo pipefail
name=$1 dir=$2 run=$3
: "${LAB_VENV:?LAB_VENV (the Salt venv) must be set}"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8

# Never in the host's network namespace (lab/topology.py also checks this before the lab starts).
if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/2/ns/net)" ]; then  # kthreadd: host netns
    echo "node-init: refusing to run in the host network namespace" >&2; exit 1
fi
read -r hostpid _ < /proc/self/stat   # our PID as the host sees it (before /proc is remounted)

hostname "$name"
mount -t proc proc /proc

# Copy-on-write layers: the formula writes /etc/glance, the OCF agent, /var/lib/glance... inside the node.
cow() {  # cow TARGET KEY
    mkdir -p "$dir/cow/$2/upper" "$dir/cow/$2/work"
    mount -t overlay overlay -o "lowerdir=$1,upperdir=$dir/cow/$2/upper,workdir=$dir/cow/$2/work" "$1"
}
cow /etc etc
cow /var var
cow /root root
cow /usr/lib/ocf/resource.d ocf

# Private runtime state, fresh on every boot.
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /run/resource-agents /run/crm
# Runlevel 2 in utmp, as sysvinit records it at boot (`runlevel` says "N 2"): invoke-rc.d starts a
# service only if the current runlevel's rc.d has its S link, so disabling one keeps it stopped.
printf '[1] [20018] [~~  ] [runlevel] [~~          ] [] [0.0.0.0        ] [1970-01-01T00:00:00,000000+00:00]\n' \
    | utmpdump -r > /run/utmp 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm            # libqb ring buffers are named by pid
mount -t tmpfs -o mode=0755 tmpfs /var/lib/pacemaker
install -d -o hacluster -g haclient -m 0750 /var/lib/pacemaker/{cib,pengine,blackbox,cores,bundles}
install -o hacluster -g haclient -m 0600 "$dir/cib.xml" /var/lib/pacemaker/cib/cib.xml
mount -t tmpfs -o mode=0755 tmpfs /var/lib/corosync
mount --bind "$dir/log" /var/log                     # logs stay readable from the host
install -d -o hacluster -g haclient /var/log/pacemaker
install -d -o hacluster -g haclient -m 0775 /var/log/crmsh   # crm writes its log there (as the package makes it)
install -d /var/log/corosync /var/log/salt
install -d -o glance -g glance /var/log/glance
mount --bind "$dir/etc-corosync" /etc/corosync
mount --bind "$dir/hosts" /etc/hosts                  # node names -> addresses (crmsh resolves them)
# The shared image store of the services namespace, standing in for an NFS mount.
mkdir -p /var/lib/glance/images
mount --bind "$run/images" /var/lib/glance/images
# The host's /usr/sbin/policy-rc.d (scripts/bootstrap: apt starts no daemon on the host) would keep
# invoke-rc.d from starting anything here; a controller is a machine without one. /dev/null over it is
# not executable, which invoke-rc.d reads as "no policy" (this mount namespace only).
[ -e /usr/sbin/policy-rc.d ] && mount --bind /dev/null /usr/sbin/policy-rc.d
# The bootstrap's Python lives under /root (0700): let the glance user reach the venv interpreter.
chmod 0711 /root
install -d -m 0700 /etc/salt
install -m 0600 "$dir/minion.conf" /etc/salt/minion

ip link set lo up
echo "$hostpid" > "$dir/init.pid"

minion=
shutdown() {
    trap '' TERM INT
    [ -n "$minion" ] && kill -TERM "$minion" 2>/dev/null
    pacemakerd --shutdown >/dev/null 2>&1 || true     # stops the resources here, then the daemons
    corosync-cfgtool -H --force >/dev/null 2>&1 || true
    [ -n "$minion" ] && wait "$minion" 2>/dev/null
    exit 0
}
trap shutdown TERM INT

corosync -f &
for _ in $(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none pacemakerd &
PYTHONWARNINGS=ignore::DeprecationWarning "$LAB_VENV/bin/salt-minion" -c /etc/salt --log-level=quiet &
minion=$!
while :; do sleep 3600 & wait $! || true; done        # bash as PID 1 reaps the orphans
