"""
glance-api.conf of the glance_ha formula, pure: its sections from valid derived settings, each value
written so that oslo.config reads back exactly the string the pillar holds.

oslo.config (``oslo_config.iniparser`` and ``ConfigOpts._substitute``) changes a value as it reads it:
it strips surrounding blanks and one pair of surrounding quotes, reads ``$name``/``${name}`` as the
value of another option, ``$$`` as ``$`` and ``\\$`` as ``$$``. :func:`value` undoes each of these;
``#`` and ``;`` start a comment only at the beginning of a line, so they need nothing. Keys and
section names cannot be escaped at all: the settings refuse those that would not read back
(:data:`SECTION_RE`, :data:`OPTION_RE`).

No Salt dunders, no I/O. Loaded by Salt as ``__utils__['glance_ha_conf.<function>']``; used by
``glance_ha_settings.derive``.
"""

import re
import urllib.parse

SECTION_RE = re.compile(r"[A-Za-z0-9_.:-]+")
OPTION_RE = re.compile(r"[A-Za-z0-9_.-]+")
# glance_store driver of each store backend, and the name of its store (and section).
STORE_NAMES = {"file": "fs", "rbd": "rbd", "swift": "swift", "s3": "s3", "cinder": "cinder", "http": "http"}
# Pillar key under glance_ha:store:<backend> -> glance_store option of that backend's section.
STORE_OPTIONS = {
    "rbd": {"pool": "rbd_store_pool", "user": "rbd_store_user", "ceph_conf": "rbd_store_ceph_conf",
            "chunk_size": "rbd_store_chunk_size"},
    "swift": {"config_file": "swift_store_config_file", "reference": "default_swift_reference",
              "container": "swift_store_container",
              "create_container_on_put": "swift_store_create_container_on_put"},
    "s3": {"host": "s3_store_host", "access_key": "s3_store_access_key", "secret_key": "s3_store_secret_key",
           "bucket": "s3_store_bucket", "create_bucket_on_put": "s3_store_create_bucket_on_put"},
    "cinder": {"auth_address": "cinder_store_auth_address", "user_name": "cinder_store_user_name",
               "password": "cinder_store_password", "project_name": "cinder_store_project_name",
               "user_domain_name": "cinder_store_user_domain_name",
               "project_domain_name": "cinder_store_project_domain_name",
               "volume_type": "cinder_volume_type"},
    "http": {"insecure": "https_insecure", "ca_file": "https_ca_certificates_file"},
}
# Written in quotes whatever they hold, so a password's first and last characters need no thought.
QUOTED = {("keystone_authtoken", "password")}
# glance's import methods; copy-image copies an image into another store, so it needs two.
IMPORT_METHODS = ("glance-direct", "web-download")
MULTI_STORE_METHODS = ("copy-image",)


def value(raw, quote=False):
    """``raw`` (str, int, bool or a list of them) as written after ``option = `` so that oslo.config
    reads back ``str(raw)`` (booleans as ``true``/``false``, lists joined by commas); in quotes where
    oslo.config would strip, or always with ``quote``."""
    if isinstance(raw, bool):
        raw = str(raw).lower()
    elif isinstance(raw, list):
        raw = ",".join(str(v) for v in raw)
    # '$' -> '$$'; after a backslash oslo.config reads '\$' as '$$', so '\$' is written '\\$'.
    text = re.sub(r"(\\?)\$", lambda m: m.group(1) + ("\\$" if m.group(1) else "$$"), str(raw))
    if quote or text != text.strip() or (text[:1] in ("'", '"') and text[-1:] == text[:1]):
        text = f'"{text}"'
    return text


def url_quote(raw):
    """``raw`` quoted for the user, password or path of a URL (every reserved character)."""
    return urllib.parse.quote(str(raw), safe="")


def url_host(host):
    """``host`` as the host of a URL (IPv6 addresses in brackets)."""
    return f"[{host}]" if ":" in str(host) else str(host)


def store_name(backend):
    """The name of the store (and of its section) of glance_store backend ``backend``."""
    return STORE_NAMES[backend]


def sections(cfg):
    """The sections of glance-api.conf from derived settings ``cfg`` (dict of dicts of str, in the
    order they are written), every value encoded by :func:`value`; ``glance_ha:config`` last."""
    db, msg, ks, store, look = cfg["database"], cfg["messaging"], cfg["keystone"], cfg["store"], cfg["lookup"]
    state_dir = look.get("state_dir", "/var/lib/glance")
    name = store_name(store["backend"])
    conf = {
        "DEFAULT": {
            "enabled_backends": f"{name}:{store['backend']}",
            "enabled_import_methods": "[" + ",".join(IMPORT_METHODS) + "]",
            "worker_self_reference_url": cfg["endpoints"]["internal"],
        },
        "database": {
            "connection": f"{db['driver']}://{url_quote(db['user'])}:{url_quote(db['password'])}@"
                          f"{url_host(db['host'])}:{db['port']}/{url_quote(db['name'])}",
        },
        "glance_store": {"default_backend": name},
    }
    conf["DEFAULT"].update(_log_options(cfg["log"]))
    if db["driver"] == "mysql+pymysql":
        # A hung MariaDB must not hang every API request for good (measured in the lab: doc/ha.md).
        conf["database"]["connection_parameters"] = "connect_timeout=5&read_timeout=30&write_timeout=30"
    conf[name] = _store_options(store)
    # Staging and tasks on the share, and one worker_self_reference_url (the internal endpoint) on every
    # node: glance records it as the image's stage host and proxies an import only to another URL, so
    # whichever node holds the VIP imports what any node staged.
    conf["os_glance_staging_store"] = {"filesystem_store_datadir": _dir(store, "staging_path", state_dir, "staging")}
    conf["os_glance_tasks_store"] = {"filesystem_store_datadir": _dir(store, "tasks_path", state_dir, "tasks")}
    if store.get("timeout"):
        # glance_store >= 5.4: delete, size and capacity calls on a hung filesystem (NFS) give up.
        for section in ("os_glance_staging_store", "os_glance_tasks_store") + ((name,) if name == "fs" else ()):
            conf[section]["filesystem_store_timeout"] = store["timeout"]
    cache = cfg.get("cache") or {}
    if cache.get("enabled"):
        # glance >= 28 keeps the cache's records in the database keyed by worker_self_reference_url: one
        # URL for every node and the directory on the share keep them true after a failover.
        conf["DEFAULT"].update({"image_cache_dir": cache["path"].rstrip("/") + "/",
                                "image_cache_driver": "centralized_db",
                                "image_cache_max_size": cache["max_size"]})
    conf["oslo_concurrency"] = {"lock_path": look.get("lock_dir", f"{state_dir}/lock")}
    if msg["driver"] in ("messagingv2", "messaging") and msg["hosts"]:
        vhost = url_quote(str(msg.get("vhost", "/")).removeprefix("/"))
        netlocs = ",".join(f"{url_quote(msg['user'])}:{url_quote(msg['password'])}@{url_host(h)}:{msg['port']}"
                           for h in msg["hosts"])
        conf["DEFAULT"]["transport_url"] = f"rabbit://{netlocs}/{vhost}"
    conf["oslo_messaging_notifications"] = {"driver": msg["driver"]}
    if msg["driver"] in ("messagingv2", "messaging"):
        conf["oslo_messaging_notifications"]["retry"] = msg["retry"]
        # A hung broker holds each notification until this socket timeout (oslo.messaging: 60 s).
        conf["oslo_messaging_rabbit"] = {"heartbeat_timeout_threshold": 5}
    conf["paste_deploy"] = {"flavor": "keystone+cachemanagement" if cache.get("enabled") else "keystone"}
    auth = ks["auth_url"].rstrip("/")
    svc = ks["service_user"]
    conf["keystone_authtoken"] = {
        "www_authenticate_uri": auth,
        "auth_url": auth,
        "auth_type": "password",
        "http_connect_timeout": 5,  # unset, a hung Keystone hangs every request with a new token
        "region_name": ks["region"],
        "project_domain_name": svc["project_domain_name"],
        "user_domain_name": svc["user_domain_name"],
        "project_name": svc["project_name"],
        "username": svc["username"],
        "password": svc["password"],
    }
    for section, options in cfg["config"].items():
        conf.setdefault(section, {}).update(options)
    return {section: {option: value(raw, (section, option) in QUOTED) for option, raw in options.items()}
            for section, options in conf.items()}


def _dir(store, key, state_dir, sub):
    """The directory (with a trailing /) of ``store[key]``, or ``<state_dir>/<sub>/`` when unset."""
    return (store.get(key) or f"{state_dir}/{sub}").rstrip("/") + "/"


def _store_options(store):
    if store["backend"] == "file":
        return {"filesystem_store_datadir": store["path"].rstrip("/") + "/"}
    options = store.get(store["backend"]) or {}
    return {STORE_OPTIONS[store["backend"]][key]: raw for key, raw in options.items()
            if raw not in ("", None)}


def _log_options(log):
    """oslo.log's options for ``log:destination``: a file, the journal or syslog."""
    if log["destination"] == "journald":
        return {"use_journal": True}
    if log["destination"] == "syslog":
        return {"use_syslog": True, "syslog_log_facility": log["syslog_facility"]}
    return {"log_file": log["file"]}

