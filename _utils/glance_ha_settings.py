"""
The settings of the glance_ha formula, pure: merging, validation, derived values.

defaults.yaml <- the os_family map <- pillar ``glance_ha:lookup`` <- pillar ``glance_ha`` are merged
(:func:`merge`), checked (:func:`problems`: every problem at once, each naming its pillar key) and
completed (:func:`derive`: the VIP addresses and netmasks, the endpoint URLs, and ``conf``, the
sections of glance-api.conf from ``glance_ha_conf``).

No Salt dunders, no I/O. The Pacemaker value rules (intervals, ids), the Keystone URL rule and the
secrets rule are handed in by the caller as ``rules``, as are the parameters of the OCF agent:
``{"interval_ms": f(value) -> int|None, "is_id": f(str) -> bool, "is_duration_key": f(name) -> bool,
"is_bool_key": f(name) -> bool, "bool_word": f(value) -> bool|None, "auth_url_problem": f(url) ->
str|None, "roles_problem": f(roles) -> str|None, "is_secret": f(name) -> bool, "interfaces": the
endpoint interface names, "agent_params": set of names, or None when not checked}``. Loaded by Salt as
``__utils__['glance_ha_settings.<function>']`` and importable as a plain module by tests; its
sibling ``glance_ha_conf`` is imported by path (Salt's loader gives ``_utils`` no package).
"""

import copy
import importlib.util
import ipaddress
import os
import re
import sys
import urllib.parse


def _sibling(name):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    if path not in sys.modules:
        spec = importlib.util.spec_from_file_location(f"_glance_ha_utils.{name}", path)
        sys.modules[path] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[path])
    return sys.modules[path]


conf = _sibling("glance_ha_conf")
NIC_RE = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# The lowest port glance can bind: it runs as an unprivileged user.
MIN_PORT = 1024
LOG_DESTINATIONS = ("file", "journald", "syslog")
LOG_DIR = "/var/log/glance"
SYSLOG_FACILITIES = ("LOG_USER", "LOG_DAEMON", "LOG_SYSLOG", *(f"LOG_LOCAL{i}" for i in range(8)))
# What each store backend cannot do without (keys of glance_ha:store:<backend>).
STORE_REQUIRED = {"rbd": ("pool", "user", "ceph_conf"), "swift": ("config_file", "reference", "container"),
                  "s3": ("host", "access_key", "secret_key", "bucket"),
                  "cinder": ("auth_address", "user_name", "password", "project_name"), "http": ()}

# Keys whose value is a free-form mapping: their sub-keys are not checked against defaults.yaml.
FREE_FORM = {("config",), ("lookup",), ("cluster", "meta")}
DB_DRIVERS = ("mysql+pymysql", "postgresql", "postgresql+psycopg2")
NOTIFY_DRIVERS = ("messagingv2", "messaging", "noop", "log")
MONITOR_LEVELS = ("process", "http", "healthcheck", "api")
CLUSTER_MODES = ("active-passive", "active-active")
# The primitive's migration-threshold when ``cluster:meta`` does not set it. In active-passive a killed
# glance-api restarts in place (a move costs a stop and a start as well) and moves on the third failure.
# In active-active an instance that fails under a VIP would keep the VIP down for its restart: with 1
# the VIP moves at once to a node whose instance runs, the failed instance waits for failure-timeout.
MIGRATION_THRESHOLD = {"active-passive": 3, "active-active": 1}
# disable_by_file_path of the healthcheck app in glance's own glance-api-paste.ini (the formula does
# not render the paste file): while it exists, GET /healthcheck answers 503 DISABLED BY FILE.
HEALTHCHECK_DISABLE_FILE = "/etc/glance/healthcheck_disable"
# The agent's drain wait leaves two fifths of the stop timeout (2 x 10 s of the primitive's 60 s stop op,
# glance_ha/cluster/objects.jinja) to glance's graceful stop and the KILL.
MAX_DRAIN_DELAY = 40
STORE_BACKENDS = tuple(conf.STORE_NAMES)
# The HA guide's glance-api.conf options and what replaces them.
LEGACY_OPTIONS = {
    "sql_connection": "[database] connection (pillar glance_ha:database)",
    "notifier_strategy": "[oslo_messaging_notifications] driver (pillar glance_ha:messaging:driver)",
    "rabbit_host": "[DEFAULT] transport_url (pillar glance_ha:messaging:hosts)",
    "rabbit_port": "[DEFAULT] transport_url (pillar glance_ha:messaging:port)",
    "registry_host": "nothing: glance-registry no longer exists",
    "registry_port": "nothing: glance-registry no longer exists",
}




def _merge(base, over):
    """Deep-merge ``over`` into a copy of ``base`` (dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _unknown_keys(data, schema, path, errors):
    for key, value in data.items():
        kpath = path + (key,)
        if key not in schema:
            known = ", ".join(sorted(str(k) for k in schema))
            errors.append(f"{_key(kpath)}: unknown key (known keys here: {known})")
        elif kpath in FREE_FORM:
            continue
        elif isinstance(schema[key], dict):
            if not isinstance(value, dict):
                errors.append(f"{_key(kpath)}: must be a mapping, got {type(value).__name__}")
            else:
                _unknown_keys(value, schema[key], kpath, errors)


def _key(path):
    return "glance_ha:" + ":".join(str(p) for p in path)

def _ip_with_prefix(value):
    """'10.0.0.11' or '10.0.0.11/24' -> (ip_address, prefix or None); ValueError when malformed."""
    text = str(value).strip()
    prefix = None
    if "/" in text:
        text, _, raw = text.partition("/")
        if not raw.isdigit():
            raise ValueError(f"bad prefix length {raw!r}")
        prefix = int(raw)
    addr = ipaddress.ip_address(text)
    if prefix is not None and not 1 <= prefix <= addr.max_prefixlen:
        raise ValueError(f"prefix length {prefix} out of range 1-{addr.max_prefixlen}")
    return addr, prefix


def _is_host(value):
    try:
        ipaddress.ip_address(str(value))
        return True
    except ValueError:
        # '10.0.0.300' is a malformed IP address, not a host name
        return bool(HOSTNAME_RE.match(str(value))) and not re.match(r"^[0-9.]+$", str(value))


def _is_int(value, low, high=None):
    return (isinstance(value, int) and not isinstance(value, bool)
            and value >= low and (high is None or value <= high))


def _check_url(value, key, errors, required=True, schemes=("http", "https")):
    what = " or ".join(f"{scheme}://" for scheme in schemes) + " URL"
    if value in ("", None):
        if required:
            errors.append(f"{key}: is required (an {what})")
        return None
    parsed = urllib.parse.urlparse(str(value))
    if parsed.scheme not in schemes or not parsed.hostname or re.search(r"\s", str(value)):
        hint = (" (glance serves plain HTTP; TLS belongs to a proxy in front of it, whose URL is not"
                " glance's endpoint)" if parsed.scheme == "https" else "")
        errors.append(f"{key}: {value!r} is not an {what}{hint}")
        return None
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        errors.append(f"{key}: {value!r} has an invalid port")
        return None
    return parsed

def _validate(pillar, merged, schema, rules):
    errors = []
    if not isinstance(pillar, dict):
        return ["glance_ha: must be a mapping"]
    _unknown_keys(pillar, schema, (), errors)
    if errors:
        # Values of misspelt keys would only produce confusing follow-up errors.
        return errors
    _control_chars(pillar, (), errors)
    cfg = merged
    _validate_vip(cfg.get("vip", {}), errors)
    nic, nics = cfg.get("vip", {}).get("nic"), rules.get("nics")
    if cfg.get("cluster", {}).get("manage") and nics and nic and NIC_RE.match(str(nic)) and nic not in nics:
        errors.append(f"glance_ha:vip:nic: {nic!r} is not an interface of this minion (it has: {', '.join(nics)});"
                      " leave vip:nic empty when interface names differ between nodes: IPaddr2 then finds"
                      " the interface by the route to the VIP")
    _validate_api(cfg.get("api", {}), errors)
    _validate_database(cfg.get("database", {}), errors)
    _validate_messaging(cfg.get("messaging", {}), errors)
    _validate_keystone(cfg, errors, rules)
    _validate_store(cfg.get("store", {}), errors)
    _validate_shared_dirs(cfg, errors)
    _validate_log(cfg.get("log", {}), errors)
    _validate_cluster(cfg.get("cluster", {}), errors, rules)
    _validate_endpoint_urls(cfg.get("endpoints", {}), errors, rules)
    _validate_writer(cfg, errors, rules)
    if not isinstance(cfg.get("endpoints", {}).get("manage"), bool):
        errors.append("glance_ha:endpoints:manage: must be true or false")
    nova_conf = cfg.get("nova", {}).get("config")
    if not isinstance(nova_conf, str) or not nova_conf.startswith("/"):
        errors.append(f"glance_ha:nova:config: {nova_conf!r} is not an absolute path")
    _validate_config_overrides(cfg.get("config"), errors)
    return errors


def _validate_endpoint_urls(endpoints, errors, rules):
    for iface in rules["interfaces"]:
        _check_url(endpoints.get(iface), f"glance_ha:endpoints:{iface}", errors, required=False,
                   schemes=("http",))


def _control_chars(node, path, errors):
    """Newlines and other control characters would end an INI line early (and inject options)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and _has_control_char(key):
                errors.append(f"{_key(path)}: key {key!r} contains a newline or another control character")
            else:
                _control_chars(value, path + (key,), errors)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _control_chars(value, path + (i,), errors)
    elif isinstance(node, str) and _has_control_char(node):
        errors.append(f"{_key(path)}: contains a newline or another control character")


def _has_control_char(text):
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _validate_vip(vip, errors):
    mask = vip.get("cidr_netmask")
    parsed = {}
    for name in ("internal", "public"):
        value = vip.get(name)
        if value in ("", None):
            if name == "internal":
                errors.append("glance_ha:vip:internal: is required (the address glance binds to)")
            continue
        try:
            parsed[name] = _ip_with_prefix(value)
        except ValueError as exc:
            errors.append(f"glance_ha:vip:{name}: {value!r} is not an IP address ({exc})")
    for name, (addr, _prefix) in parsed.items():
        if addr.is_unspecified or addr.is_multicast:
            errors.append(f"glance_ha:vip:{name}: {addr} cannot be a VIP (unspecified or multicast)")
    if mask not in ("", None) and not _is_int(mask, 1, 128):
        errors.append(f"glance_ha:vip:cidr_netmask: {mask!r} is not a prefix length (e.g. 24; '' = the"
                      " prefix of the route to the VIP)")
    elif mask not in ("", None):
        # cidr_netmask is for the VIPs written without their own /prefix.
        unprefixed = {name: addr for name, (addr, prefix) in parsed.items() if prefix is None}
        if len({addr.version for addr in unprefixed.values()}) > 1:
            errors.append(f"glance_ha:vip:cidr_netmask: {mask} cannot be the prefix of both an IPv4 and an"
                          " IPv6 VIP: write each VIP with its own prefix (10.0.0.11/24, 2001:db8::11/64)")
        for name, addr in unprefixed.items():
            if mask > addr.max_prefixlen:
                errors.append(f"glance_ha:vip:cidr_netmask: {mask} is too long for IPv{addr.version}"
                              f" address {addr} of glance_ha:vip:{name}")
    if len(parsed) == 2:
        (iaddr, iprefix), (paddr, pprefix) = parsed["internal"], parsed["public"]
        if iaddr == paddr and (iprefix or mask or None) != (pprefix or mask or None):
            errors.append(f"glance_ha:vip:public: {vip['public']!r} is the internal VIP with a different"
                          f" netmask ({vip['internal']!r}): use one VIP or two different addresses")
    nic = vip.get("nic")
    if nic not in ("", None) and not NIC_RE.match(str(nic)):
        errors.append(f"glance_ha:vip:nic: {nic!r} is not a network interface name")


def _validate_api(api, errors):
    if not _is_int(api.get("port"), 1, 65535):
        errors.append(f"glance_ha:api:port: {api.get('port')!r} is not a TCP port ({MIN_PORT}-65535)")
    elif api["port"] < MIN_PORT:
        errors.append(f"glance_ha:api:port: {api['port']} is a privileged port, which glance, running as"
                      f" an unprivileged user, cannot bind ({MIN_PORT}-65535)")
    if not _is_int(api.get("workers"), 1, 256):
        errors.append(f"glance_ha:api:workers: {api.get('workers')!r} is not a worker count (1-256)")


def _validate_database(db, errors):
    if db.get("driver") not in DB_DRIVERS:
        hint = " (MySQLdb is gone: use mysql+pymysql)" if db.get("driver") == "mysql" else ""
        errors.append(f"glance_ha:database:driver: {db.get('driver')!r} is not one of"
                      f" {', '.join(DB_DRIVERS)}{hint}")
    if not db.get("host") or not _is_host(db.get("host")):
        errors.append(f"glance_ha:database:host: {db.get('host')!r} is not a host name or IP address")
    if not _is_int(db.get("port"), 1, 65535):
        errors.append(f"glance_ha:database:port: {db.get('port')!r} is not a TCP port (1-65535)")
    for key in ("name", "user"):
        if not isinstance(db.get(key), str) or not db.get(key):
            errors.append(f"glance_ha:database:{key}: is required")
    _require_password(db, "glance_ha:database:password", errors)
    for key in ("sync", "create"):
        if not isinstance(db.get(key), bool):
            errors.append(f"glance_ha:database:{key}: must be true or false")
        elif db.get(key) and not str(db.get("driver")).startswith("mysql"):
            errors.append(f"glance_ha:database:{key}: needs MySQL/MariaDB (driver mysql+pymysql); set it"
                          f" false with driver {db.get('driver')!r}")
    if not _is_int(db.get("lock_timeout"), 1, 86400):
        errors.append(f"glance_ha:database:lock_timeout: {db.get('lock_timeout')!r} is not a number of"
                      " seconds (1-86400)")
    if not isinstance(db.get("user_host"), str) or not db.get("user_host"):
        errors.append("glance_ha:database:user_host: must be the host part of the account ('%': any host)")
    admin = db.get("admin") or {}
    if db.get("create") is True:
        if not isinstance(admin.get("username"), str) or not admin.get("username"):
            errors.append("glance_ha:database:admin:username: is required when glance_ha:database:create is true")
        _require_password(admin, "glance_ha:database:admin:password", errors)


def _require_password(section, key, errors):
    value = section.get("password")
    if value in ("", None):
        errors.append(f"{key}: is required (no default password)")
    elif not isinstance(value, str):
        errors.append(f"{key}: must be a string (quote it in YAML)")


def _validate_messaging(msg, errors):
    driver = msg.get("driver")
    if driver not in NOTIFY_DRIVERS:
        errors.append(f"glance_ha:messaging:driver: {driver!r} is not one of {', '.join(NOTIFY_DRIVERS)}"
                      " (the HA guide's notifier_strategy = rabbit is messagingv2)")
        return
    hosts = msg.get("hosts")
    if not isinstance(hosts, list):
        errors.append("glance_ha:messaging:hosts: must be a list of RabbitMQ hosts")
        return
    for i, host in enumerate(hosts):
        if not _is_host(host):
            errors.append(f"glance_ha:messaging:hosts:{i}: {host!r} is not a host name or IP address")
    if not _is_int(msg.get("port"), 1, 65535):
        errors.append(f"glance_ha:messaging:port: {msg.get('port')!r} is not a TCP port (1-65535)")
    if not isinstance(msg.get("vhost"), str) or not msg.get("vhost"):
        errors.append(f"glance_ha:messaging:vhost: {msg.get('vhost')!r} is not a vhost name (e.g. /)")
    if not _is_int(msg.get("retry"), -1):
        errors.append(f"glance_ha:messaging:retry: {msg.get('retry')!r} is not a retry count (-1 = forever)")
    if driver in ("messagingv2", "messaging"):
        if not hosts:
            errors.append(f"glance_ha:messaging:hosts: is required when driver is {driver}"
                          " (or set driver: noop)")
        if not msg.get("user"):
            errors.append("glance_ha:messaging:user: is required")
        _require_password(msg, "glance_ha:messaging:password", errors)


def _validate_keystone(cfg, errors, rules):
    ks = cfg.get("keystone", {})
    url = ks.get("auth_url")
    parsed = _check_url(url, "glance_ha:keystone:auth_url", errors)
    problem = parsed is not None and rules["auth_url_problem"](url)
    if problem:
        errors.append(f"glance_ha:keystone:auth_url: {problem}")
    if not ks.get("region") or not isinstance(ks.get("region"), str):
        errors.append("glance_ha:keystone:region: is required")
    _require_password(ks.get("service_user", {}), "glance_ha:keystone:service_user:password", errors)
    for who in ("admin", "service_user"):
        for key in ("username", "project_name", "user_domain_name", "project_domain_name"):
            if not ks.get(who, {}).get(key):
                errors.append(f"glance_ha:keystone:{who}:{key}: is required")
    if cfg.get("endpoints", {}).get("manage"):
        _require_password(ks.get("admin", {}), "glance_ha:keystone:admin:password", errors)
    _validate_service_identity(cfg, errors, rules)


def _validate_service_identity(cfg, errors, rules):
    """The service user's roles and switch, and the name of the image service (glance_ha.identity,
    glance_ha.endpoints)."""
    user = cfg.get("keystone", {}).get("service_user", {})
    if not isinstance(user.get("manage"), bool):
        errors.append("glance_ha:keystone:service_user:manage: must be true or false")
    problem = rules["roles_problem"](user.get("roles"))
    if problem:
        errors.append(f"glance_ha:keystone:service_user:roles: {problem}")
    name = cfg.get("endpoints", {}).get("service_name")
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        errors.append("glance_ha:endpoints:service_name: must be the name of the image service, "
                      "without surrounding spaces (default glance)")


def _validate_store(store, errors):
    backend = store.get("backend")
    if backend not in STORE_BACKENDS:
        errors.append(f"glance_ha:store:backend: {backend!r} is not one of {', '.join(STORE_BACKENDS)}")
        return
    _validate_store_timeouts(store, errors)
    if backend == "file":
        if not _is_abs_path(store.get("path")):
            errors.append(f"glance_ha:store:path: {store.get('path')!r} is not an absolute path")
        return
    options = store.get(backend) or {}
    key = f"glance_ha:store:{backend}"
    for name in STORE_REQUIRED[backend]:
        if options.get(name) in ("", None):
            errors.append(f"{key}:{name}: is required with store:backend {backend}")
    for name, value in options.items():
        if value in ("", None):
            continue
        if isinstance(value, (dict, list)):
            errors.append(f"{key}:{name}: must be a scalar")
        elif name in ("ceph_conf", "config_file", "ca_file") and not str(value).startswith("/"):
            errors.append(f"{key}:{name}: {value!r} is not an absolute path")
        elif name in ("host", "auth_address"):
            _check_url(value, f"{key}:{name}", errors)
        elif name in ("create_container_on_put", "create_bucket_on_put", "insecure") and not isinstance(value, bool):
            errors.append(f"{key}:{name}: must be true or false")
        elif name == "chunk_size" and not (_is_int(value, 1, 1024) and value & (value - 1) == 0):
            errors.append(f"{key}:{name}: {value!r} is not a power of two in MiB (e.g. 8)")


def _is_abs_path(value):
    return isinstance(value, str) and value.startswith("/") and "/../" not in value + "/" \
        and "/./" not in value + "/"


def _norm(path):
    return "/" + path.strip("/") if path.strip("/") else "/"


def _under(path, parent):
    """True when ``path`` is ``parent`` itself or inside it (both normalised absolute paths)."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def share_dir(store):
    """The mount point of the shared filesystem the formula knows of (str), or '' when there is none:
    ``store:share``, else ``store:path`` with the file backend."""
    share = store.get("share")
    if isinstance(share, str) and share:
        return _norm(share)
    return _norm(store["path"]) if store.get("backend") == "file" and _is_abs_path(store.get("path")) else ""


def _validate_store_timeouts(store, errors):
    if not _is_int(store.get("timeout"), 0, 3600):
        errors.append(f"glance_ha:store:timeout: {store.get('timeout')!r} is not a number of seconds"
                      " (0-3600; 0 = glance_store waits for ever)")
    if not _is_int(store.get("check_timeout"), 1, 300):
        errors.append(f"glance_ha:store:check_timeout: {store.get('check_timeout')!r} is not a number of"
                      " seconds (1-300)")


def _validate_shared_dirs(cfg, errors):
    """store:share, store:staging_path, store:tasks_path and cache:path: the data glance keeps between
    requests lives on the shared filesystem, so any node the cluster moves glance to finds it."""
    store, cache = cfg.get("store", {}), cfg.get("cache", {})
    share = store.get("share")
    if share not in ("", None) and not _is_abs_path(share):
        errors.append(f"glance_ha:store:share: {share!r} is not an absolute path (the mount point of the"
                      " shared filesystem)")
        return
    if store.get("backend") not in STORE_BACKENDS or (
            store.get("backend") == "file" and not _is_abs_path(store.get("path"))):
        return
    known = share_dir(store)
    if store.get("backend") == "file" and known and not _under(_norm(store["path"]), known):
        errors.append(f"glance_ha:store:path: {store['path']!r} is not on the shared filesystem"
                      f" glance_ha:store:share {known!r}")
    if not isinstance(cache.get("enabled"), bool):
        errors.append("glance_ha:cache:enabled: must be true or false")
    if not _is_int(cache.get("max_size"), 1):
        errors.append(f"glance_ha:cache:max_size: {cache.get('max_size')!r} is not a size in bytes")
    if cache.get("enabled") is True and not known:
        errors.append("glance_ha:cache:enabled: the image cache needs a shared filesystem (glance_ha:store:share):"
                      " its records are shared by every node through the database")
    named = [("glance_ha:store:staging_path", store.get("staging_path")),
             ("glance_ha:store:tasks_path", store.get("tasks_path"))]
    if cache.get("enabled") is True:
        named.append(("glance_ha:cache:path", cache.get("path")))
    seen = {}
    for key, value in named:
        if value in ("", None):
            continue
        if not _is_abs_path(value):
            errors.append(f"{key}: {value!r} is not an absolute path")
            continue
        path = _norm(value)
        if not known:
            errors.append(f"{key}: {value!r} is not under a shared filesystem the formula knows of: set"
                          " glance_ha:store:share to its mount point (with several controllers every"
                          " node must find what one of them wrote there)")
        elif path == known or not _under(path, known):
            errors.append(f"{key}: {value!r} is not under the shared filesystem {known!r}"
                          " (glance_ha:store:share, or glance_ha:store:path with the file backend)")
        elif store.get("backend") == "file" and path == _norm(store["path"]):
            errors.append(f"{key}: {value!r} is the image store itself (glance_ha:store:path)")
        else:
            seen[key] = path
    for key, path in seen.items():
        for other, opath in seen.items():
            if key < other and (_under(path, opath) or _under(opath, path)):
                errors.append(f"{key}: {path!r} and {other} {opath!r} must be separate directories")
    overrides = cfg.get("config")
    default = overrides.get("DEFAULT") if isinstance(overrides, dict) else None
    if isinstance(default, dict) and default.get("worker_self_reference_url") not in (None, ""):
        errors.append("glance_ha:config:DEFAULT:worker_self_reference_url: is the internal endpoint on every"
                      " controller (active/passive: staging, tasks and the image cache are shared, so any"
                      " node serves an import another one staged); a per-node URL would make glance proxy"
                      " an import to a node that may be down")


def _validate_log(log, errors):
    destination = log.get("destination")
    if destination not in LOG_DESTINATIONS:
        errors.append(f"glance_ha:log:destination: {destination!r} is not one of {', '.join(LOG_DESTINATIONS)}")
    elif destination == "file":
        path = str(log.get("file") or "")
        if not path.startswith(LOG_DIR + "/") or path.endswith("/") or "/../" in path + "/":
            errors.append(f"glance_ha:log:file: {log.get('file')!r} is not a file under {LOG_DIR}/")
    elif destination == "syslog" and log.get("syslog_facility") not in SYSLOG_FACILITIES:
        errors.append(f"glance_ha:log:syslog_facility: {log.get('syslog_facility')!r} is not one of"
                      f" {', '.join(SYSLOG_FACILITIES)}")


def _validate_cluster(cl, errors, rules):
    for key in ("manage",):
        if not isinstance(cl.get(key), bool):
            errors.append(f"glance_ha:cluster:{key}: must be true or false")
    if not isinstance(cl.get("writer"), str):
        errors.append("glance_ha:cluster:writer: must be a minion id or '' (the Pacemaker DC)")
    if cl.get("mode") not in CLUSTER_MODES:
        errors.append(f"glance_ha:cluster:mode: {cl.get('mode')!r} is not one of {', '.join(CLUSTER_MODES)}")
    ids = [("resource", cl.get("resource")), ("clone", cl.get("clone"))]
    ids += [(f"vip_resources:{k}", v) for k, v in (cl.get("vip_resources") or {}).items()]
    for key, value in ids:
        if not isinstance(value, str) or not rules["is_id"](value):
            errors.append(f"glance_ha:cluster:{key}: {value!r} is not a valid Pacemaker id")
    names = [v for _k, v in ids]
    if len(set(names)) != len(names):
        errors.append("glance_ha:cluster:vip_resources: resource ids must differ from each other and"
                      " from glance_ha:cluster:resource and glance_ha:cluster:clone")
    monitor = cl.get("monitor") or {}
    for key in ("interval", "timeout"):
        value = monitor.get(key)
        millis = rules["interval_ms"](value)
        if millis is None or millis <= 0:
            errors.append(f"glance_ha:cluster:monitor:{key}: {value!r} is not a positive interval"
                          " (e.g. 30s, 1min, 500ms)")
    if cl.get("monitor_level") not in MONITOR_LEVELS:
        errors.append(f"glance_ha:cluster:monitor_level: {cl.get('monitor_level')!r} is not one of"
                      f" {', '.join(MONITOR_LEVELS)}")
    drain = cl.get("drain_file")
    if drain not in (None, "") and not (_is_abs_path(drain) and not drain.endswith("/")):
        errors.append(f"glance_ha:cluster:drain_file: {drain!r} is not an absolute file path ('' = no drain;"
                      f" unset = {HEALTHCHECK_DISABLE_FILE} in active-active, no drain in active-passive)")
    if not _is_int(cl.get("drain_delay"), 0, MAX_DRAIN_DELAY):
        errors.append(f"glance_ha:cluster:drain_delay: {cl.get('drain_delay')!r} is not a number of seconds"
                      f" (0-{MAX_DRAIN_DELAY}: the stop timeout, 60 s, keeps 20 s for glance's graceful stop"
                      " and the KILL)")
    for name, value in (cl.get("meta") or {}).items():
        if isinstance(value, (dict, list)) or value is None:
            errors.append(f"glance_ha:cluster:meta:{name}: must be a scalar")
        elif rules["is_duration_key"](name) and rules["interval_ms"](value) is None:
            errors.append(f"glance_ha:cluster:meta:{name}: {value!r} is not an interval")
        elif rules["is_bool_key"](name) and rules["bool_word"](value) is None \
                and not isinstance(value, bool):
            errors.append(f"glance_ha:cluster:meta:{name}: {value!r} is not true or false")
        elif name in ("migration-threshold",) and not (
                _is_int(value, 0) or str(value).upper() == "INFINITY"):
            errors.append(f"glance_ha:cluster:meta:{name}: {value!r} is not a count or INFINITY")
    stick = cl.get("stickiness")
    if not (_is_int(stick, 0) or str(stick).upper() == "INFINITY"):
        errors.append(f"glance_ha:cluster:stickiness: {stick!r} is not a score (integer or INFINITY)")
    if not isinstance(cl.get("secret_params"), list):
        errors.append("glance_ha:cluster:secret_params: must be a list of parameter names")
    source = str(cl.get("agent_source") or "")
    if source.startswith("https://"):
        if not re.match(r"^(sha256=|sha512=)?[0-9a-fA-F]{64,128}$", str(cl.get("agent_source_hash") or "")):
            errors.append("glance_ha:cluster:agent_source_hash: is required for an https agent_source"
                          " (sha256=<hex>)")
    elif not source.startswith("salt://"):
        errors.append(f"glance_ha:cluster:agent_source: {source!r} must be a salt:// or https:// URL")


def _validate_writer(cfg, errors, rules):
    """Without a managed cluster, the Keystone catalog still needs exactly one writer: a named minion,
    or the DC of a Pacemaker installed here."""
    cl = cfg.get("cluster", {})
    if (cl.get("manage") is False and cl.get("writer") == "" and cfg.get("endpoints", {}).get("manage") is True
            and not rules.get("pacemaker")):
        errors.append("glance_ha:cluster:writer: must name the minion that writes the Keystone catalog when"
                      " glance_ha:cluster:manage is false and glance_ha:endpoints:manage is true (no Pacemaker"
                      " is installed here to elect one; otherwise every controller would write at once)")


def _validate_lookup(lookup, osfamilymap, merged, errors, rules):
    """glance_ha:lookup overrides OS data: its keys are those of osfamilymap.yaml."""
    if lookup is None:
        return
    if not isinstance(lookup, dict):
        errors.append("glance_ha:lookup: must be a mapping of OS data (see osfamilymap.yaml)")
        return
    known = {key for family in osfamilymap.values() for key in family}
    for key in lookup:
        if key not in known:
            errors.append(f"glance_ha:lookup:{key}: unknown key (known keys here: {', '.join(sorted(known))})")
    look = merged["lookup"]
    for key in ("config_dir", "config_file", "credentials_file", "ocf_dir", "state_dir", "lock_dir",
                "glance_manage"):
        if key in look and not str(look[key]).startswith("/"):
            errors.append(f"glance_ha:lookup:{key}: {look[key]!r} is not an absolute path")
    if not isinstance(look.get("pkgs", []), list):
        errors.append("glance_ha:lookup:pkgs: must be a list of package names")
    params = look.get("agent_params", {})
    if not isinstance(params, dict):
        errors.append("glance_ha:lookup:agent_params: must be a mapping of agent parameters")
        return
    known = rules.get("agent_params")
    for name, value in params.items():
        if rules["is_secret"](name):
            errors.append(f"glance_ha:lookup:agent_params:{name}: credentials never go into the CIB; the"
                          " api monitor reads them from lookup:credentials_file (written from"
                          " keystone:service_user)")
        elif known is not None and name not in known:
            errors.append(f"glance_ha:lookup:agent_params:{name}: is not a parameter of the OCF agent"
                          f" glance-api (it has: {', '.join(sorted(known))})")
        elif isinstance(value, (dict, list)) or value is None:
            errors.append(f"glance_ha:lookup:agent_params:{name}: must be a scalar")


def _validate_config_overrides(overrides, errors):
    if not isinstance(overrides, dict):
        errors.append("glance_ha:config: must be a mapping of {section: {option: value}}")
        return
    for section, options in overrides.items():
        key = f"glance_ha:config:{section}"
        if not isinstance(section, str) or not conf.SECTION_RE.fullmatch(section):
            errors.append(f"{key}: {section!r} is not a section name (letters, digits, _ . : -)")
        elif not isinstance(options, dict):
            errors.append(f"{key}: must be a mapping of {{option: value}}")
        else:
            for option, value in options.items():
                if not isinstance(option, str) or not conf.OPTION_RE.fullmatch(option):
                    errors.append(f"{key}:{option!r}: is not an option name (letters, digits, _ . -)")
                elif option == "enabled_import_methods" and section == "DEFAULT" and any(
                        m in str(value) for m in conf.MULTI_STORE_METHODS):
                    errors.append(f"{key}:{option}: copy-image copies an image into another store;"
                                  " with one store it accepts the request and never runs it")
                elif option in LEGACY_OPTIONS:
                    errors.append(f"{key}:{option}: is a legacy option; it became "
                                  f"{LEGACY_OPTIONS[option]}")
                elif value is None or isinstance(value, dict) or (isinstance(value, list) and not all(
                        isinstance(v, (str, int, float)) for v in value)):
                    errors.append(f"{key}:{option}: must be a scalar or a list of scalars")
                elif isinstance(value, list) and any("," in str(v) for v in value):
                    errors.append(f"{key}:{option}: a list item holding ',' would be read as two items"
                                  " (write the option as one string)")


# --------------------------------------------------------------------------- derived values
def _derive_all(cfg):
    vip = cfg["vip"]
    mask = vip["cidr_netmask"]
    internal, iprefix = _ip_with_prefix(vip["internal"])
    vip["internal"] = str(internal)
    vip["internal_netmask"] = iprefix or mask
    if vip.get("public"):
        public, pprefix = _ip_with_prefix(vip["public"])
        vip["public"] = "" if public == internal else str(public)
        vip["public_netmask"] = pprefix or mask
    else:
        vip["public"] = ""
        vip["public_netmask"] = vip["internal_netmask"]
    port = cfg["api"]["port"]
    base_internal = f"http://{conf.url_host(vip['internal'])}:{port}"
    base_public = f"http://{conf.url_host(vip['public'] or vip['internal'])}:{port}"
    eps = cfg["endpoints"]
    eps["internal"] = eps.get("internal") or base_internal
    eps["admin"] = eps.get("admin") or base_internal
    eps["public"] = eps.get("public") or base_public
    # The WSGI server's listen address (the agent's bind_host; glance 33 has no such option): the
    # internal VIP; with a second (public) VIP every address, so glance answers on both (only the
    # active node holds the VIPs). In active-active every node's instance listens on every address:
    # a VIP comes to a node where glance is already running, and goes without restarting it.
    if vip["public"] or cfg["cluster"].get("mode") == "active-active":
        cfg["api"]["bind_host"] = "::" if ":" in vip["internal"] + vip["public"] else "0.0.0.0"
    else:
        cfg["api"]["bind_host"] = vip["internal"]
    cluster = cfg["cluster"]
    cluster["meta"] = dict(cluster.get("meta") or {})
    cluster["meta"].setdefault("migration-threshold", MIGRATION_THRESHOLD[cluster["mode"]])
    # The drain at stop matters where a balancer polls every instance's /healthcheck: active-active.
    # In active-passive the VIP moves with the single instance.
    if cluster.get("drain_file") is None:
        cluster["drain_file"] = HEALTHCHECK_DISABLE_FILE if cluster["mode"] == "active-active" else ""
    _derive_shared_dirs(cfg)
    cfg["conf"] = conf.sections(cfg)
    return cfg


def _derive_shared_dirs(cfg):
    """``store:share`` (the mount point the guard checks, '' = none), ``store:staging_path``,
    ``store:tasks_path`` and ``cache:path``: on the share when there is one, else (a backend without a
    shared filesystem) the node's state directory."""
    store, cache = cfg["store"], cfg["cache"]
    share = share_dir(store)
    base = share or cfg["lookup"].get("state_dir", "/var/lib/glance")
    store["share"] = share
    store["path"] = _norm(store["path"]) if store["backend"] == "file" else store["path"]
    for key, sub in (("staging_path", "staging"), ("tasks_path", "tasks")):
        store[key] = _norm(store[key]) if store.get(key) else f"{base.rstrip('/')}/{sub}"
    cache["path"] = _norm(cache["path"]) if cache.get("path") else f"{base.rstrip('/')}/cache"


def merge(defaults, osfamilymap, pillar, os_family):
    """
    The merged settings (dict, a new object): ``defaults`` (defaults.yaml, with or without its
    ``glance_ha`` key) <- ``osfamilymap[os_family]`` (into ``lookup``) <- ``pillar["lookup"]`` <-
    the rest of ``pillar`` (the ``glance_ha`` pillar; anything but a mapping counts as empty).
    """
    defaults = defaults.get("glance_ha", defaults)
    pillar = pillar if isinstance(pillar, dict) else {}
    merged = _merge(defaults, {"lookup": (osfamilymap or {}).get(os_family or "", {})})
    if isinstance(pillar.get("lookup"), dict):
        merged = _merge(merged, {"lookup": pillar["lookup"]})
    return _merge(merged, {k: v for k, v in pillar.items() if k != "lookup"})


def problems(defaults, osfamilymap, pillar, merged, rules, scope="all"):
    """
    Every problem of the ``glance_ha`` pillar (list of str, each starting with its pillar key; empty
    = valid). ``pillar`` is checked for unknown keys against ``defaults`` (and ``lookup`` against the
    keys of ``osfamilymap``), ``merged`` (from :func:`merge`) for values. ``scope="nova"`` checks only
    what glance_ha.nova uses (the VIP, the API port, the endpoints): compute nodes hold no database
    or Keystone secrets.
    """
    defaults = defaults.get("glance_ha", defaults)
    if not isinstance(pillar, dict):
        return ["glance_ha: must be a mapping"]
    if scope != "nova":
        errors = _validate(pillar, merged, defaults, rules)
        _validate_lookup(pillar.get("lookup"), osfamilymap or {}, merged, errors, rules)
        return errors
    errors = []
    _unknown_keys(pillar, defaults, (), errors)
    if not errors:
        _validate_vip(merged["vip"], errors)
        _validate_api(merged["api"], errors)
        _validate_endpoint_urls(merged["endpoints"], errors, rules)
    return errors


def derive(merged, scope="all", pacemaker=True):
    """
    The settings the SLS files and templates use (dict, a new object) from valid ``merged``
    settings: the VIPs split into address and netmask, the endpoint URLs, and ``conf`` (sections of
    glance-api.conf, dict of dicts of str). ``scope="nova"`` derives only the internal endpoint.
    ``cluster:writer`` becomes None (every minion writes) when the cluster is not managed, none is
    named and ``pacemaker`` (bool: Pacemaker installed on this minion) is false.
    """
    cfg = copy.deepcopy(merged)
    cl = cfg.get("cluster", {})
    if cl.get("manage") is False and cl.get("writer") == "" and not pacemaker:
        cl["writer"] = None
    if scope == "nova":
        vip, _ = _ip_with_prefix(cfg["vip"]["internal"])
        cfg["endpoints"]["internal"] = (cfg["endpoints"].get("internal")
                                        or f"http://{conf.url_host(vip)}:{cfg['api']['port']}")
        return cfg
    return _derive_all(cfg)
