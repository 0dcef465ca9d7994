"""
The settings of the glance_ha formula, as ``glance_ha/map.jinja`` gives them to every SLS file.

``glance_ha.settings`` merges defaults.yaml, the os_family map, ``glance_ha:lookup`` and the
``glance_ha`` pillar, validates the result and derives the values the SLS files need (endpoint URLs,
the VIPs, the sections of glance-api.conf). Every problem is reported at once, each naming its pillar
key, before any state runs: a rendering error stops the whole run, so bad pillar data changes nothing.

What it returns is a view with every secret masked (``********``): no SLS file needs a password,
and what an operator can call must not put one in the job cache. The files that hold secrets
(glance-api.conf, the OCF agent's credentials file) are produced inside the ``glance_ha.config_managed``
state and never returned. The merging and validation code is ``_utils/glance_ha_settings.py``.
"""

import hashlib
import os
import re
import shutil
import subprocess
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "glance_ha"
PACEMAKER_BINARIES = ("pacemakerd", "crmadmin", "cibadmin")
OCF_ROOT = "/usr/lib/ocf"
MASK = "********"  # how the crm module shows a secret parameter (glance_ha_secrets.MASK)
OCF_NOT_RUNNING = 7
AGENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def __virtual__():
    return __virtualname__


def _rules(agent_params=None):
    """The value rules pillar validation applies (see _utils/glance_ha_settings.py)."""
    return {"interval_ms": __utils__["pcmk_values.parse_duration_ms"],
            "is_id": __utils__["pcmk_values.is_id"],
            "is_duration_key": __utils__["pcmk_values.is_duration_key"],
            "is_bool_key": __utils__["pcmk_values.is_bool_key"],
            "bool_word": __utils__["pcmk_values.bool_word"],
            "auth_url_problem": __utils__["glance_ha_keystone.auth_url_problem"],
            "roles_problem": __utils__["glance_ha_keystone.roles_problem"],
            "interfaces": __utils__["glance_ha_keystone.interfaces"](),
            "is_secret": __utils__["glance_ha_secrets.is_secret"],
            "agent_params": agent_params,
            "nics": sorted(__grains__.get("ip_interfaces") or {}),
            "pacemaker": bool(_pacemaker_found())}


def _agent_params(merged):
    """The parameter names (set) of the OCF agent the cluster will run, from its meta-data, when the
    pillar sets ``lookup:agent_params``; None when there is nothing to check or the agent comes
    from an https:// URL (then crm.configured checks them against the installed agent)."""
    cluster, lookup = merged.get("cluster"), merged.get("lookup")
    if not isinstance(cluster, dict) or not isinstance(lookup, dict) or not lookup.get("agent_params"):
        return None  # nothing to check, or a malformed pillar that problems() names
    source = str(cluster.get("agent_source") or "")
    if not source.startswith("salt://"):
        return None
    text = __salt__["cp.get_file_str"](source, saltenv=__opts__.get("saltenv") or "base")
    if not text or "<resource-agent" not in text:
        raise SaltInvocationError(f"glance_ha:cluster:agent_source: {source} is not an OCF agent"
                                  " with meta-data (not found on the fileserver?)")
    end = text.find("</resource-agent>")
    xml = text[text.index("<resource-agent"):end + len("</resource-agent>")] if end >= 0 else text
    meta = __utils__["pcmk_cib.agent_metadata"]("ocf:openstack:glance-api", xml)
    return set(meta["params"])


def _pacemaker_found():
    """The Pacemaker binaries on this minion's PATH (list of str)."""
    return [name for name in PACEMAKER_BINARIES if shutil.which(name)]


def settings(defaults, osfamilymap=None, pillar=None, scope="all"):
    """
    Merge, validate and derive the formula's settings; return them with every secret masked.

    defaults
        defaults.yaml (dict, with or without its ``glance_ha`` key).
    osfamilymap
        osfamilymap.yaml (dict: os_family -> OS data), merged by this minion's ``os_family`` grain.
    pillar
        The ``glance_ha`` pillar (dict); default: this minion's.
    scope
        ``all`` (controllers) or ``nova``: only what glance_ha.nova needs (the VIP, the API port,
        the internal endpoint) is checked and derived; compute nodes hold no database or Keystone
        secrets.

    Returns a dict shaped like defaults.yaml, plus ``vip:internal_netmask``/``public_netmask``
    (prefix lengths), the endpoint URLs filled in, and (scope ``all``) ``conf``: the sections of
    glance-api.conf, ``{section: {option: str}}``. ``cluster:writer`` is None (every minion that
    applies a shared state writes it) when the cluster is not managed, no writer is named and
    Pacemaker is not installed here. Every value whose name is secret, and every form of
    a secret inside another value (the database URL, the transport URL), is ``********``.

    ``lookup:agent_params`` are checked against the meta-data of the OCF agent at
    ``cluster:agent_source`` (read through the fileserver when it is a ``salt://`` URL).

    Raises SaltInvocationError listing every problem of the pillar, one per line, each starting with
    its key (``glance_ha:vip:internal: ...``).

    CLI Example:

    .. code-block:: bash

        salt '*' glance_ha.settings "$(cat glance_ha/defaults.yaml)" "$(cat glance_ha/osfamilymap.yaml)"
    """
    if pillar is None:
        pillar = __salt__["pillar.get"]("glance_ha", {})
    pillar = {} if pillar is None else pillar
    utils = __utils__
    merged = utils["glance_ha_settings.merge"](defaults, osfamilymap, pillar, __grains__.get("os_family", ""))
    rules = _rules(_agent_params(merged) if scope != "nova" else None)
    errors = utils["glance_ha_settings.problems"](defaults, osfamilymap, pillar, merged, rules, scope)
    if errors:
        message = "invalid pillar data for glance_ha:\n  - " + "\n  - ".join(errors)
        raise SaltInvocationError(utils["glance_ha_secrets.mask"](message))
    cfg = utils["glance_ha_settings.derive"](merged, scope, pacemaker=bool(_pacemaker_found()))
    view = utils["glance_ha_secrets.mask_data"](cfg)
    if "conf" in cfg:
        # Derived values embed secrets (the database and transport URLs) in every rendered form.
        secrets = utils["glance_ha_secrets.collect"](pillar)
        view["conf"] = utils["glance_ha_secrets.mask_data"](cfg["conf"], secrets)
    return view


def writer(writer=None, what="shared state"):
    """
    Whether this minion writes shared state (the Keystone catalog, the database schema) in this run.

    writer
        None: always write. A minion id, or '' (the Pacemaker DC): ``crm.writer_status`` decides
        wherever the crm module is loaded. Without it (no Pacemaker tools) a minion id is compared
        with this minion's id, and '' means "no cluster here, this minion is the only writer" --
        unless Pacemaker binaries are present (a broken crm module must not let every node write).
    what
        What is written (str), for the comment.

    Returns ``{'write': True|False|None, 'comment': str}``: None when it cannot be told (the comment
    says why; a state fails then).

    CLI Example:

    .. code-block:: bash

        salt '*' glance_ha.writer ''
        salt '*' glance_ha.writer ctl1 what='the Keystone catalog'
    """
    if writer is None:
        return {"write": True, "comment": ""}
    writer = str(writer)
    if "crm.writer_status" in __salt__:
        try:
            status = __salt__["crm.writer_status"](writer=writer)
        except (CommandExecutionError, SaltInvocationError) as exc:
            return {"write": None, "comment": f"Cannot tell whether this minion is the writer: {exc}"}
        if status.get("writer"):
            return {"write": True, "comment": ""}
        reason = status.get("reason", "")
        return {"write": False, "comment": (f"Not the writer ({writer or 'the Pacemaker DC'} writes {what}"
                                            + (f"; {reason}" if reason else "") + "); nothing done here.")}
    if writer:
        if writer == __opts__.get("id"):
            return {"write": True, "comment": ""}
        return {"write": False, "comment": f"Not the writer ({writer} writes {what}); nothing done here."}
    found = _pacemaker_found()
    if found:
        return {"write": None, "comment": (
            "writer '' means the Pacemaker DC, but the crm module is not loaded although "
            f"Pacemaker is installed ({', '.join(found)}): fix the crm module, or set the writer to a minion id")}
    return {"write": True, "comment": "No Pacemaker on this minion: it is the only writer."}


# ------------------------------------------------------------------------------- the running glance
def _agent(resource, action, timeout):
    """(rc, stdout, exit reason) of the resource's OCF agent run here for ``action`` with the
    resource's parameters from the CIB, as pacemaker-execd runs it (OCF_RESKEY_* environment, the op
    timeout in ms). Secret parameters are masked in what the crm module returns and are left out:
    no action run here needs them (the api monitor reads its credentials file)."""
    prim = __salt__["crm.get"](resource)
    if not prim or prim.get("type") != "primitive":
        raise CommandExecutionError(f"{resource} is not a primitive in the CIB")
    parts = str(prim.get("agent") or "").split(":")
    if len(parts) != 3 or parts[0] != "ocf" or not all(parts):
        raise CommandExecutionError(f"{resource} is not an OCF resource ({prim.get('agent')})")
    provider, kind = parts[1], parts[2]
    path = os.path.join(OCF_ROOT, "resource.d", provider, kind)
    env = {"PATH": AGENT_PATH, "LANG": "C", "OCF_ROOT": OCF_ROOT, "OCF_RA_VERSION_MAJOR": "1",
           "OCF_RA_VERSION_MINOR": "1", "OCF_RESOURCE_INSTANCE": resource, "OCF_RESOURCE_TYPE": kind,
           "OCF_RESOURCE_PROVIDER": provider, "OCF_RESKEY_CRM_meta_timeout": str(int(timeout) * 1000)}
    for key, value in (prim.get("params") or {}).items():
        if str(value) != MASK:
            env[f"OCF_RESKEY_{key}"] = str(value)
    try:
        proc = subprocess.run([path, action], env=env, capture_output=True, text=True, timeout=int(timeout) + 10,
                              check=False)
    except FileNotFoundError:
        raise CommandExecutionError(f"resource agent {path} is not installed on this node") from None
    except subprocess.TimeoutExpired:
        raise CommandExecutionError(f"{path} {action}: no answer within {timeout} s") from None
    reasons = [line.split("ocf-exit-reason:", 1)[1].strip() for line in proc.stderr.splitlines()
               if "ocf-exit-reason:" in line]
    return proc.returncode, proc.stdout, _mask("; ".join(reasons) or proc.stderr.strip()[-500:])


def _mask(text):
    return __utils__["glance_ha_secrets.mask"](text)


def _sha256(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


def running_config(resource="p_glance-api"):
    """
    Whether the instance of ``resource`` running on this node runs the configuration its files
    hold now: the agent's ``loaded-config`` action gives the sha256 of each file it loaded at its
    start or last reload (glance-api.conf, the paste pipeline, the server settings), compared here
    with the files' sha256 now.

    Returns ``{'running': bool, 'recorded': bool, 'loaded': {path: sha256}, 'current': {path:
    sha256 or None}, 'stale': [paths that differ]}``. ``recorded`` False (an instance started by an
    agent that did not record it) counts as stale: ``stale`` is ``['(not recorded)']``. Not running
    here: ``running`` False, nothing else filled. Raises CommandExecutionError if the agent fails.

    CLI Example:

    .. code-block:: bash

        salt 'ctl*' glance_ha.running_config p_glance-api
    """
    rc, out, reason = _agent(resource, "loaded-config", 30)
    if rc == OCF_NOT_RUNNING:
        return {"running": False, "recorded": False, "loaded": {}, "current": {}, "stale": []}
    if rc != 0:
        raise CommandExecutionError(f"{resource}: the agent's loaded-config failed (rc {rc}): {reason}")
    loaded = {}
    for line in out.splitlines():
        digest, _, path = line.strip().partition(" ")
        if digest and path:
            loaded[path.strip().lstrip("*")] = digest
    current = {path: _sha256(path) for path in loaded}
    stale = sorted(path for path in loaded if current[path] != loaded[path])
    return {"running": True, "recorded": bool(loaded), "loaded": loaded, "current": current,
            "stale": stale if loaded else ["(not recorded)"]}


def reload(resource="p_glance-api", timeout=120):
    """
    Make the instance of ``resource`` running on this node load its configuration again,
    gracefully (the agent's ``reload`` action: the listening socket stays open; gunicorn's new
    workers are ready before the old ones retire), with the resource's parameters from the CIB.
    ``timeout``: seconds. Returns True; raises CommandExecutionError with the agent's exit reason
    when it is not running here or the reload failed.

    CLI Example:

    .. code-block:: bash

        salt ctl1 glance_ha.reload p_glance-api
    """
    rc, _out, reason = _agent(resource, "reload", timeout)
    if rc != 0:
        raise CommandExecutionError(f"{resource}: reload failed (agent rc {rc}): {reason}")
    return True


def _is_mount_point(text, path):
    """Whether ``path`` is a visible mount point in /proc/self/mountinfo ``text``. A mount listed there may
    be hidden (mounted below a later mount of /var, say): the path is walked from the root mount, prefix by
    prefix, through the mounts that are stacked last at each place."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            mounts.append((fields[0], fields[1], point))
    points = {ident: point for ident, _parent, point in mounts}

    def top(mount):
        while True:
            over = [m for m in mounts if m[1] == mount[0] and m[2] == mount[2] and m is not mount]
            if not over:
                return mount
            mount = over[-1]

    roots = [m for m in mounts if m[2] == "/" and points.get(m[1]) != "/"]
    if not roots:
        return False
    current, found, prefix = top(roots[0]), path == "/", ""
    for part in (p for p in path.split("/") if p):
        prefix += "/" + part
        hits = [m for m in mounts if m[1] == current[0] and m[2] == prefix]
        found = bool(hits)
        if hits:
            current = top(hits[-1])
    return found


def share_status(path, timeout=10):
    """
    Whether ``path`` is a mounted filesystem that answers, and who owns it: what glance_ha.config checks
    before it creates anything on the shared store.

    path
        The mount point (absolute path, str).
    timeout
        Seconds (int) the filesystem gets to answer a statfs and a stat (a hung NFS server never
        answers; the stat is then killed and not waited for).

    Returns ``{'path': str, 'mounted': bool, 'answered': bool|None, 'uid': int|None, 'gid': int|None,
    'error': str}``: ``mounted`` is read from /proc/self/mountinfo (no I/O on the share; a mount hidden below a later one does not count); ``answered``
    is None when not mounted (nothing was asked), False on a timeout or an error (``error`` says which).

    CLI Example:

    .. code-block:: bash

        salt 'ctl*' glance_ha.share_status /var/lib/glance/images
    """
    path = "/" + str(path).strip("/") if str(path).strip("/") else "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        mounted = _is_mount_point(handle.read(), path)
    status = {"path": path, "mounted": mounted, "answered": None, "uid": None, "gid": None, "error": ""}
    if not mounted:
        return status
    # Not subprocess.run: its kill is followed by a wait, which a process stuck on NFS never ends.
    proc = subprocess.Popen(["sh", "-c", 'stat -f -c %T "$0/." >/dev/null && stat -c "%u %g" "$0/."', path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + int(timeout)
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc.returncode is None:
        proc.kill()
        status.update(answered=False, error=f"no answer to a stat within {int(timeout)} s")
        return status
    out = proc.stdout.read().strip()
    if proc.returncode != 0 or not re.fullmatch(r"\d+ \d+", out):
        status.update(answered=False, error=out.splitlines()[0] if out else f"stat exited {proc.returncode}")
        return status
    uid, gid = (int(v) for v in out.split())
    status.update(answered=True, uid=uid, gid=gid)
    return status
