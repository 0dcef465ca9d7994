"""
File states of the glance_ha formula that keep secrets out of their output.

``config_managed`` manages a file rendered from a template with the formula's settings *with* their
secrets (glance-api.conf, the OCF agent's credentials file): the settings are derived from the pillar
inside the state and given to the template as ``glance_ha``; the text is written and never returned.
Its diff (under ``test=True`` too) shows every secret as ``********``. ``ini_option_present`` /
``ini_option_absent`` set / remove one option of an INI file (nova.conf's ``[glance] api_servers``)
and leave every other line of the operator's file as it was. ``running_config`` reloads the running
glance-api wherever its configuration files changed since it loaded them (on every run, not only
when a file changes in this run).

The file is written by ``_utils/glance_ha_files.write_atomic`` rather than by Salt's
``file.managed``: ``file.managed`` (salt.utils.files.copyfile) moves its temporary file into place
and only then gives it the old file's mode and owner and then the wanted ones, so a file whose mode
was widened by hand (0644) holds the new secrets world-readable for a moment, and a new file is
briefly root-only (unreadable by glance); test/functional/test_formula_files.py
(test_new_secrets_never_readable_by_others) catches the first with ``file.managed`` in its place.
``write_atomic`` creates the temporary file with its final owner and mode before writing a byte, then
renames it over the target (a symlink's target).

.. code-block:: yaml

    glance_ha-config-file:
      glance_ha.config_managed:
        - name: /etc/glance/glance-api.conf
        - source: salt://glance_ha/templates/glance-api.conf.jinja
        - group: glance
        - mode: '0640'
"""

import grp
import logging
import os
import pwd
import time

import salt.utils.files
import salt.utils.templates
import salt.utils.yaml
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "glance_ha"
ERRORS = (CommandExecutionError, SaltInvocationError, OSError, KeyError, ValueError)


def __virtual__():
    if "glance_ha.settings" in __salt__:
        return __virtualname__
    return (False, "the glance_ha execution module is not loaded (run saltutil.sync_all)")


def _mask(text, secrets=()):
    return __utils__["glance_ha_secrets.mask"](text, secrets)


def _read(path):
    try:
        with salt.utils.files.fopen(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _stat(path):
    """Owner, group and mode ('0640') of ``path``, or {} when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return {}
    return {"user": _name(pwd.getpwuid, st.st_uid), "group": _name(grp.getgrgid, st.st_gid),
            "mode": f"{st.st_mode & 0o7777:04o}"}


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def _write(path, text, user, group, mode):
    try:
        uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise CommandExecutionError(f"cannot write {path}: user/group {exc} does not exist") from exc
    directory = os.path.dirname(os.path.realpath(path))
    if not os.path.isdir(directory):
        raise CommandExecutionError(f"cannot write {path}: directory {directory} does not exist")
    __utils__["glance_ha_files.write_atomic"](path, text, uid=uid, gid=gid, mode=int(str(mode), 8))


def _yaml(url):
    text = __salt__["cp.get_file_str"](url, saltenv=__env__)
    if text is False or text is None:
        raise CommandExecutionError(f"{url} not found in saltenv {__env__}")
    return salt.utils.yaml.safe_load(text) or {}


def _settings(source):
    """The formula's settings with their secrets, from defaults.yaml and osfamilymap.yaml of the
    formula ``source`` belongs to and this run's pillar (pillar= overrides included)."""
    tplroot = source[len("salt://"):].split("/")[0]
    defaults = _yaml(f"salt://{tplroot}/defaults.yaml")
    osfamilymap = _yaml(f"salt://{tplroot}/osfamilymap.yaml")
    pillar = __pillar__.get("glance_ha", {})
    __salt__["glance_ha.settings"](defaults, osfamilymap, pillar=pillar)  # raises naming every bad key
    merged = __utils__["glance_ha_settings.merge"](defaults, osfamilymap, pillar, __grains__.get("os_family", ""))
    return __utils__["glance_ha_settings.derive"](merged)


def _render(source, context):
    if not source.startswith("salt://"):
        raise SaltInvocationError(f"source {source} is not a salt:// URL")
    template = __salt__["cp.get_file_str"](source, saltenv=__env__)
    if template is False or template is None:
        raise CommandExecutionError(f"template {source} not found in saltenv {__env__}")
    result = salt.utils.templates.TEMPLATE_REGISTRY["jinja"](
        template, from_str=True, to_str=True, context=context, saltenv=__env__, salt=__salt__,
        pillar=__pillar__, grains=__grains__, opts=__opts__,
        tpldir=os.path.dirname(source[len("salt://"):]), tplfile=source, sls="")
    if not result.get("result"):
        raise CommandExecutionError(f"rendering {source} failed: {result.get('data')}")
    return result["data"]


def config_managed(name, source, user="root", group="root", mode="0640"):
    """
    Render ``source`` (a Jinja template given the formula's settings, secrets included, as
    ``glance_ha``) to ``name`` with the given owner and mode.

    The reported diff masks every secret; ``test=True`` reports the exact masked diff and writes
    nothing.

    name
        Path of the file.
    source
        ``salt://<formula>/...`` URL of the template; the settings come from that formula's
        defaults.yaml and osfamilymap.yaml and the ``glance_ha`` pillar.
    user, group, mode
        Owner and permissions the file must have (default root:root 0640).
    """
    ret = __utils__["glance_ha_states.ret"](name)
    mode = str(mode).zfill(4)
    secrets = __utils__["glance_ha_secrets.collect"](__pillar__.get("glance_ha", {}))
    try:
        new = _render(source, {"glance_ha": _settings(source)})
    except ERRORS as exc:
        ret["result"] = False
        ret["comment"] = f"Could not render {source}: " + _mask(str(exc), secrets)
        return ret
    old = _read(name)
    current = _stat(name)
    changes = {}
    if old is None:
        changes["new"] = f"file {name} created"
    if old != new:
        changes["diff"] = __utils__["glance_ha_secrets.masked_diff"](old or "", new, secrets, path=name)
    for key, want in (("user", user), ("group", group), ("mode", mode)):
        if old is not None and current.get(key) != want:
            changes[key] = {"old": current.get(key), "new": want}
    if not changes:
        ret["comment"] = f"File {name} is in the correct state"
        return ret
    if __opts__["test"]:
        return __utils__["glance_ha_states.pending"](ret, True, changes, f"File {name} would be updated", "")
    try:
        _write(name, new, user, group, mode)
    except ERRORS as exc:
        ret["result"] = False
        ret["comment"] = _mask(str(exc), secrets)
        return ret
    return __utils__["glance_ha_states.pending"](ret, False, changes, "", f"File {name} updated")


def _ini_edit(name, section, key, value):
    """The state of one INI option: ``value`` None removes it."""
    ret = __utils__["glance_ha_states.ret"](name)
    old = _read(name)
    if old is None:
        if value is None:
            ret["comment"] = f"{name} does not exist: nothing to remove"
            return ret
        ret["result"] = False
        ret["comment"] = (f"{name} does not exist: install the service that owns it first, or set "
                          "the pillar key glance_ha:nova:config to its path")
        return ret
    ini = "glance_ha_ini."
    current = __utils__[ini + "get"](old, section, key)
    if current == value:
        ret["comment"] = (f"[{section}] {key} is already {value} in {name}" if value is not None
                          else f"[{section}] {key} is not set in {name}")
        return ret
    if value is None:
        new = __utils__[ini + "remove_option"](old, section, key)
        done = f"[{section}] {key} removed from {name}"
        would = f"[{section}] {key} would be removed from {name}"
    else:
        new = __utils__[ini + "set_option"](old, section, key, value)
        done = f"[{section}] {key} set to {value} in {name}"
        would = f"[{section}] {key} would be set to {value} in {name}"
    changes = {"old": _mask(current), "new": _mask(value),
               "diff": __utils__["glance_ha_secrets.masked_diff"](old, new, path=name)}
    if __opts__["test"]:
        return __utils__["glance_ha_states.pending"](ret, True, changes, would, done)
    st = _stat(name)
    _write(name, new, st["user"], st["group"], st["mode"])
    return __utils__["glance_ha_states.pending"](ret, False, changes, would, done)


def ini_option_present(name, section, key, value):
    """
    Ensure ``key = value`` in ``[section]`` of the INI file ``name``, touching no other line.

    The file must exist (it belongs to another package, e.g. nova's nova.conf); its owner and
    mode are kept.

    name
        Path of the INI file.
    section, key, value
        The option to set.
    """
    return _ini_edit(name, section, key, str(value))


def ini_option_absent(name, section, key):
    """
    Ensure ``key`` is not set in ``[section]`` of the INI file ``name``, touching no other line
    (the section stays). A missing file is fine.

    name
        Path of the INI file.
    section, key
        The option to remove.
    """
    return _ini_edit(name, section, key, None)


def _deferred_because(status, me):
    """Why Pacemaker would not want glance-api touched here now ([] = it may be reloaded)."""
    why = []
    if status.get("cluster_maintenance"):
        why.append("the cluster is in maintenance-mode")
    if status.get("maintenance"):
        why.append("the resource has maintenance=true")
    if status.get("is_managed") is False:
        why.append("the resource is unmanaged (is-managed=false)")
    if (status.get("nodes") or {}).get(me, {}).get("maintenance"):
        why.append(f"node {me} is in maintenance")
    if not why and status.get("managed") is False:
        why.append("Pacemaker does not manage the resource now (crm_mon: unmanaged)")
    return why


def _password_accepted(service_user, keystone, wait):
    """None when Keystone accepts the pillar's password of glance's service user (waiting at most
    ``wait`` seconds for the writer to set it), else why not (str)."""
    password = __salt__["config.get"](service_user["password_key"]) or ""
    if not password:
        return None
    ident = "keystone_identity."
    deadline = time.monotonic() + float(wait)
    try:
        domain = __salt__[ident + "domain_get"](service_user.get("domain", "Default"), **keystone)
        domain_id = (domain or {}).get("id", "default")
        while not __salt__[ident + "password_check"](service_user["name"], domain_id, password, **keystone):
            if time.monotonic() >= deadline:
                return (f"Keystone does not accept the new password of glance's service user "
                        f"{service_user['name']!r} yet (waited {wait} s): the writer sets it "
                        "(glance_ha.identity); run again once it has")
            time.sleep(2)
    except CommandExecutionError as exc:
        log.warning("glance_ha.running_config: cannot ask Keystone (%s); reloading all the same", _mask(str(exc)))
    return None


def running_config(name, timeout=120, service_user=None, keystone=None, keystone_wait=60):
    """
    Converge "the running glance-api == its configuration files" on every run, wherever resource
    ``name`` (an ``ocf:openstack:glance-api`` primitive) is active on this node: when the files
    differ from what the running instance loaded (the agent records their sha256 at start and at
    each reload), glance-api is reloaded gracefully (the agent's ``reload``: no request lost, the
    listening socket stays). Parameters of the resource (listen address, workers, monitor) are the
    CIB's business: Pacemaker restarts or reload-agents for them.

    Deferred, with result True and a comment saying why, while Pacemaker must not touch the
    resource: cluster ``maintenance-mode``, resource ``maintenance`` or ``is-managed=false``, node
    maintenance; the first run after that reloads. Nothing to do where glance-api is not active.
    ``test=True``: result None and the files that would be reloaded.

    name
        The resource id.
    timeout
        Seconds for the reload (and for the cluster to settle when this run wrote the CIB).
    service_user, keystone
        ``{'name', 'domain', 'password_key'}`` of glance's service user and the Keystone connection
        arguments (``profile``, ``auth_url``, ...): when given, a reload waits (at most
        ``keystone_wait`` seconds) until Keystone accepts the pillar's password of that user, so a
        rotated password reaches glance only once Keystone has it (new workers could not
        authenticate before).

    .. code-block:: yaml

        glance-api-running-config:
          glance_ha.running_config:
            - name: p_glance-api
    """
    ret = __utils__["glance_ha_states.ret"](name)
    test = bool(__opts__.get("test"))
    try:
        me = __salt__["crm.node_name"]()
        if me is None:
            ret["comment"] = f"No cluster (CIB_file is set): {name} runs nowhere, nothing to reload"
            return ret
        if __salt__["crm.last_commit"]() and not test:
            __salt__["crm.wait"](timeout)  # this run wrote the CIB: let the cluster act on it first
        status = __salt__["crm.resource_status"](name)
        if me not in status.get("started_on", []):
            where = ", ".join(status.get("started_on", [])) or "no node"
            ret["comment"] = f"{name} is not active on this node ({me}; active on: {where}): nothing to reload"
            return ret
        found = __salt__["glance_ha.running_config"](name)
        if not found["running"]:
            ret["comment"] = f"{name} is not running on this node ({me}) as far as its agent sees: nothing to reload"
            return ret
        if not found["stale"]:
            ret["comment"] = f"{name} on {me} runs the configuration its files hold ({_digests(found['loaded'])})"
            return ret
        stale = ", ".join(found["stale"])
        why = _deferred_because(status, me)
        if why:
            ret["comment"] = (f"Reload of {name} on {me} deferred: {'; '.join(why)}. It runs an older "
                              f"configuration than {stale}; the first run after that reloads it.")
            return ret
        changes = {"reloaded": {"node": me, "files": found["stale"],
                                "old": _digests({p: found["loaded"].get(p) for p in found["stale"]}),
                                "new": _digests({p: found["current"].get(p) for p in found["stale"]})}}
        if test:
            return __utils__["glance_ha_states.pending"](
                ret, True, changes, f"{name} on {me} would be reloaded: {stale} changed since it loaded them", "")
        if service_user and keystone:
            refused = _password_accepted(service_user, keystone, keystone_wait)
            if refused:
                ret["result"] = False
                ret["comment"] = f"{name} on {me} not reloaded: {refused}"
                return ret
        __salt__["glance_ha.reload"](name, timeout=timeout)
        after = __salt__["glance_ha.running_config"](name)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = _mask(f"{name}: {exc}")
        return ret
    if after["stale"]:
        ret["result"] = False
        ret["comment"] = f"{name} on {me} reloaded, but it still differs from {', '.join(after['stale'])}"
        return ret
    return __utils__["glance_ha_states.pending"](ret, False, changes, "", f"{name} reloaded on {me}: it runs {stale} now")


def _digests(by_path):
    return ", ".join(f"{os.path.basename(p)} {(d or 'missing')[:12]}" for p, d in sorted(by_path.items()))


def share_present(name, user, group, dirs=(), mode="0750", timeout=10):
    """
    The shared filesystem of the image store is mounted at ``name``, answers, belongs to ``user``:``group``
    by number, and holds the directories ``dirs`` (created ``user``:``group`` ``mode`` when missing).

    Nothing is created on a share that is not mounted (it would land on local disk), and nothing is
    chowned: a share (or one of ``dirs``) owned by other ids than this node's ``user`` and ``group``
    fails, naming both (on NFS the ids must be the same on every node; chowning would move the share
    from node to node). ``timeout``: seconds the filesystem gets to answer (a hung NFS server).

    .. code-block:: yaml

        glance_ha-share:
          glance_ha.share_present:
            - name: /var/lib/glance/images
            - user: glance
            - group: glance
            - dirs: [/var/lib/glance/images/staging, /var/lib/glance/images/tasks]
    """
    ret = __utils__["glance_ha_states.ret"](name)
    try:
        uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        ret.update(result=False, comment=f"user/group {exc} does not exist")
        return ret
    status = __salt__["glance_ha.share_status"](name, timeout=timeout)
    if not status["mounted"]:
        ret.update(result=False, comment=(
            f"{name} is not mounted: the image store must be the shared filesystem; nothing is created on"
            " local disk, and glance-api does not start on this node until it is mounted"))
        return ret
    if not status["answered"]:
        ret.update(result=False, comment=f"{name} does not answer: {status['error']}")
        return ret
    wrong = []
    if (status["uid"], status["gid"]) != (uid, gid):
        wrong.append(f"{name} belongs to uid:gid {status['uid']}:{status['gid']}")
    missing = []
    for path in dirs:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            missing.append(path)
            continue
        if (st.st_uid, st.st_gid) != (uid, gid):
            wrong.append(f"{path} belongs to uid:gid {st.st_uid}:{st.st_gid}")
    if wrong:
        ret.update(result=False, comment=(
            f"{'; '.join(wrong)}, but {user}:{group} is {uid}:{gid} on this node: not chowned (a shared"
            " directory chowned by each node in turn would belong to none); give glance the same uid and gid"
            " on every node, or chown the share once"))
        return ret
    if not missing:
        ret["comment"] = f"{name} is mounted, answers and belongs to {user}:{group}"
        return ret
    if not __opts__["test"]:
        for path in missing:
            __utils__["glance_ha_files.make_dir"](path, uid, gid, int(str(mode), 8))
    return __utils__["glance_ha_states.pending"](ret, __opts__["test"], {"created": missing},
                                                 f"would create {', '.join(missing)}",
                                                 f"created {', '.join(missing)} on {name}")
