"""
File states of the glance_ha formula that keep secrets out of their output.

``config_managed`` renders a template and manages the file like ``file.managed``, but its diff (under
``test=True`` too) shows every password as ``********``; the file is written atomically with its final
owner and mode. ``ini_option_present`` sets one option of an INI file (nova.conf's
``[glance] api_servers``) and leaves every other line of the operator's file as it was.

.. code-block:: yaml

    glance_ha-config-file:
      glance_ha.config_managed:
        - name: /etc/glance/glance-api.conf
        - source: salt://glance_ha/templates/glance-api.conf.jinja
        - group: glance
        - mode: '0640'
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "glance_ha"
ERRORS = (CommandExecutionError, SaltInvocationError, OSError)


def __virtual__():
    if "glance_ha.render" in __salt__:
        return __virtualname__
    return (False, "the glance_ha execution module is not loaded (run saltutil.sync_all)")


def _secrets():
    # __pillar__ is this run's pillar, including pillar= overrides given on the command line.
    return __salt__["glance_ha.secrets"](__pillar__.get("glance_ha", {}))


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def config_managed(name, source, user="root", group="root", mode="0640"):
    """
    Render ``source`` (a Jinja template) to ``name`` with the given owner and mode.

    The reported diff masks every secret of the ``glance_ha`` pillar; ``test=True`` reports the
    exact masked diff and writes nothing.

    name
        Path of the file.
    source
        ``salt://`` URL of the template.
    user, group, mode
        Owner and permissions the file must have (default root:root 0640).
    """
    ret = _ret(name)
    mode = str(mode).zfill(4)
    secrets = _secrets()
    try:
        new = __salt__["glance_ha.render"](source, saltenv=__env__)
    except ERRORS as exc:
        ret["result"] = False
        ret["comment"] = f"Could not render {source}: " + _mask(str(exc), secrets)
        return ret
    old = __salt__["glance_ha.read"](name)
    current = __salt__["glance_ha.stat"](name) or {}
    changes = {}
    if old is None:
        changes["new"] = f"file {name} created"
    if old != new:
        changes["diff"] = __salt__["glance_ha.masked_diff"](old or "", new, secrets, path=name)
    for key, want in (("user", user), ("group", group), ("mode", mode)):
        if old is not None and current.get(key) != want:
            changes[key] = {"old": current.get(key), "new": want}
    if not changes:
        ret["comment"] = f"File {name} is in the correct state"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = changes
        ret["comment"] = f"File {name} would be updated"
        return ret
    try:
        __salt__["glance_ha.write"](name, new, user=user, group=group, mode=mode)
    except ERRORS as exc:
        ret["result"] = False
        ret["comment"] = _mask(str(exc), secrets)
        return ret
    ret["changes"] = changes
    ret["comment"] = f"File {name} updated"
    return ret


def _mask(text, secrets):
    for secret in secrets:
        text = text.replace(secret, "********")
    return text


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
    ret = _ret(name)
    value = str(value)
    old = __salt__["glance_ha.read"](name)
    if old is None:
        ret["result"] = False
        ret["comment"] = (f"{name} does not exist: install the service that owns it first, or set "
                          "the pillar key glance_ha:nova:config to its path")
        return ret
    current = __salt__["glance_ha.ini_get"](name, section, key)
    if current == value:
        ret["comment"] = f"[{section}] {key} is already {value} in {name}"
        return ret
    new = __salt__["glance_ha.ini_set_text"](old, section, key, value)
    ret["changes"] = {"old": current, "new": value,
                      "diff": __salt__["glance_ha.masked_diff"](old, new, [], path=name)}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"[{section}] {key} would be set to {value} in {name}"
        return ret
    st = __salt__["glance_ha.stat"](name)
    __salt__["glance_ha.write"](name, new, user=st["user"], group=st["group"], mode=st["mode"])
    ret["comment"] = f"[{section}] {key} set to {value} in {name}"
    return ret
