"""No pillar secret anywhere after a full highstate of the lab (cluster, Keystone and the database on):
not in a file others may read in a controller (what it wrote under /etc, /var and the OCF dir, its
/run and /var/lib/pacemaker), not in the minion or master logs (at DEBUG), not in the master's job
cache, not on a command line sampled (from the host's /proc, which sees every controller's processes)
while the highstate ran.

A file counts when others can reach it: glance-api.conf made 0644 (a run with the config SLS's mode
changed) stays unreadable to others inside Debian's 0750 /etc/glance, and is not reported."""


from test.ha.conftest import apply_all
from test.ha.test_faults_salt import drift, summary
from test.sweep import ProcSampler, readable_by_others

SECRET_KEYS = ("db_glance", "rabbit", "keystone_admin", "keystone_glance", "db_admin")
NODE_SWEEP = r"""f=$(mktemp); cat > "$f"
find /run /var/lib/pacemaker -xdev -type f -perm -004 -print0 | xargs -0 -r grep -lF -f "$f"
rm -f "$f"; true"""


def test_no_secret_anywhere_after_a_highstate(lab, first_apply, token):
    secrets = [v for k, v in lab.secret.items() if k in SECRET_KEYS and v]
    assert len(secrets) == len(SECRET_KEYS)
    drift(lab, token)          # so the writer's crm and Keystone states really write in this run
    with ProcSampler() as sampler:
        rc, data = apply_all(lab)
    assert summary(data) == {lab.node_name(n): [] for n in lab.node_range}, summary(data)
    assert rc == 0
    assert any("crm_verify" in c or "cibadmin --patch" in c for c in sampler.seen), \
        "the sampler never saw the run's crm tools"
    leaks = [c[:80] for c in sampler.seen if any(s in c for s in secrets)]
    assert leaks == [], "a secret on a command line"

    where = []
    for n in lab.node_range:
        d = lab.node_dir(n)
        for top in (d / "cow/etc/upper", d / "cow/var/upper", d / "cow/ocf/upper", d / "log"):
            where += [p for p, data in readable_by_others(top).items()
                      if any(s.encode() in data for s in secrets)]
        out = lab.exec(n, ["sh", "-c", NODE_SWEEP], input="\n".join(secrets) + "\n").stdout
        where += [f"{lab.node_name(n)}:{p}" for p in out.split()]
    assert where == [], f"a secret in a file others may read: {where}"

    salt_root = lab.svc_dir / "salt-root"
    logs = [lab.node_dir(n) / "log/salt/minion" for n in lab.node_range] + [salt_root / "var/log/salt/master"]
    for log in logs:
        text = log.read_text(errors="replace")
        assert "[DEBUG   ]" in text, f"{log} holds no DEBUG line"
        assert not any(s in text for s in secrets), f"a secret in {log}"
    minion_logs = "".join(log.read_text(errors="replace") for log in logs[:-1])
    assert "crm: running cibadmin --query" in minion_logs   # the crm module's DEBUG of this run
    jobs = list((salt_root / "var/cache/salt/master/jobs").rglob("*"))
    assert any(p.is_file() for p in jobs), "no job cache"
    cached = [p for p in jobs if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)]
    assert cached == [], f"a secret in the job cache: {cached}"
