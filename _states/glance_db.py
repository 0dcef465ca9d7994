"""
glance's database, by one writer: the schema migrated to the installed glance and the metadata
definitions loaded (``synced``), and optionally the database and its account created with
administrator credentials (``database_present``).

Both states act on the writer only (``glance_ha.writer``: the minion named in ``writer``, or the
Pacemaker DC for ''; None: every minion that applies them). ``synced`` is safe against two runs at
once as well: the execution module holds MariaDB's named lock while glance-manage runs, and the
second run finds nothing left to do. ``test=True`` reads only: it reports the pending migrations
and whether the metadata definitions would be loaded.

Passwords are read at run time from a pillar profile (``config.get``), never rendered into the SLS.

.. code-block:: yaml

    glance_ha-db-schema:
      glance_db.synced:
        - name: /etc/glance/glance-api.conf
        - glance_manage: /usr/bin/glance-manage
        - writer: ''
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "glance_db"


def __virtual__():
    if "glance_db.sync" in __salt__:
        return __virtualname__
    return False, "glance_db state: the glance_db execution module is not loaded (is PyMySQL installed?)"


def _ret(name):
    return __utils__["glance_ha_states.ret"](name)


def _skip(ret, writer, what):
    """Fill ``ret`` and return True when this minion must not write (or cannot tell)."""
    decision = __salt__["glance_ha.writer"](writer, what=what)
    if decision["write"]:
        return False
    ret["result"] = decision["write"] is not None
    ret["comment"] = decision["comment"]
    return True


def synced(name, glance_manage="/usr/bin/glance-manage", writer=None, lock_timeout=600):
    """
    glance's schema at the installed glance's head, and the metadata definitions loaded once.

    name
        glance-api.conf (its ``[database] connection`` is what glance-manage and the lock use)
    glance_manage
        the glance-manage script of the glance that serves
    writer
        None (always), a minion id, or '' (the Pacemaker DC)
    lock_timeout
        seconds to wait for another node's migration (MariaDB's GET_LOCK)
    """
    ret = _ret(name)
    if _skip(ret, writer, "glance's database"):
        return ret
    if __opts__.get("test") and not __salt__["file.file_exists"](name):
        ret["result"] = None
        ret["comment"] = f"{name} is not written yet: the schema would be checked and migrated after it."
        return ret
    try:
        if __opts__.get("test"):
            now = __salt__["glance_db.status"](config_file=name, glance_manage=glance_manage)
            todo = []
            if now["pending"]:
                todo.append("pending migrations: " + ", ".join(now["pending"]))
            if not now["metadefs"]:
                todo.append("the metadata definitions would be loaded (glance-manage db load_metadefs)")
            if not todo:
                ret["comment"] = f"The schema is current ({', '.join(now['current'])}); metadefs loaded."
                return ret
            ret["result"] = None
            ret["changes"] = {"migrations": {"old": now["current"], "new": now["pending"]}} \
                if now["pending"] else {"metadefs": {"old": 0, "new": "load"}}
            ret["comment"] = "; ".join(todo) + "."
            return ret
        done = __salt__["glance_db.sync"](config_file=name, glance_manage=glance_manage,
                                          lock_timeout=lock_timeout)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        if __opts__.get("test") and "Unknown database" in ret["comment"]:
            # glance_ha-db-database creates it in the real run
            ret["result"] = None
            ret["comment"] = f"The database does not exist yet: every migration would run ({exc})."
        return ret
    if done["migrated"]:
        ret["changes"]["migrations"] = {"old": done["previous"], "new": done["current"]}
    if done["metadefs_loaded"]:
        ret["changes"]["metadefs"] = {"old": 0, "new": done["metadefs_loaded"]}
    parts = []
    if done["migrated"]:
        parts.append(f"{len(done['migrated'])} migration(s) run: {', '.join(done['migrated'])}")
    if done["metadefs_loaded"]:
        parts.append(f"{done['metadefs_loaded']} metadata definition namespaces loaded")
    if not parts:
        parts.append(f"The schema is current ({', '.join(done['current'])}); metadefs loaded")
    if done["waited"] >= 1:
        parts.append(f"waited {done['waited']:.0f} s for another node's run")
    ret["comment"] = "; ".join(parts) + "."
    return ret


def database_present(name, user, admin_user="root", host="localhost", port=3306, user_host="%", writer=None,
                     profile="glance_ha:database"):
    """
    The database ``name`` and the account ``user``@``user_host`` with all privileges on it; an
    existing account's password is set in place.

    admin_user
        an account that may create databases and users and grant privileges
    profile
        pillar key (``config.get``) holding ``password`` (the account's) and ``admin:password``
    writer
        None (always), a minion id, or '' (the Pacemaker DC)
    """
    ret = _ret(name)
    if _skip(ret, writer, "glance's database"):
        return ret
    data = __salt__["config.get"](profile) or {}
    admin_password = (data.get("admin") or {}).get("password")
    if not admin_password or not data.get("password"):
        ret["result"] = False
        ret["comment"] = f"{profile}: password and admin:password are needed to create database {name!r}"
        return ret
    test = bool(__opts__.get("test"))
    try:
        plan = __salt__["glance_db.database_present"](
            name, user, data["password"], admin_user, admin_password, host=host, port=port,
            user_host=user_host, test=True)
        todo = {k: v for k, v in plan.items() if v != "present"}
        if not todo:
            ret["comment"] = f"Database {name!r} and account {user!r}@{user_host!r} are in the desired state."
            return ret
        if not test:
            __salt__["glance_db.database_present"](
                name, user, data["password"], admin_user, admin_password, host=host, port=port,
                user_host=user_host)
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
        return ret
    ret["changes"] = todo
    ret["result"] = None if test else True
    verb = "would be" if test else "were"
    ret["comment"] = f"Database {name!r}, account {user!r}@{user_host!r}: {', '.join(todo)} {verb} changed."
    return ret
