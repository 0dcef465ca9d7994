"""
Pacemaker's value semantics, the one definition the formula uses: durations, scores, roles,
booleans, ids and resource agent names. Both the ``crm`` modules (staging, comparison) and the
pillar validation of ``glance_ha`` use these functions, so a value one accepts the other accepts.

Pure: no Salt dunders, no I/O. Loaded by Salt as ``__utils__['pcmk_values.<function>']``.
"""

import re

# Pacemaker ids are XML IDs: a letter or '_' first, then letters, digits, '_', '.', '-'.
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*(ms|msec|us|usec|s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)
ISO_RE = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.IGNORECASE)
UNIT_MS = {None: 1000, "ms": 1, "msec": 1, "us": 0.001, "usec": 0.001, "s": 1000, "sec": 1000,
           "m": 60000, "min": 60000, "h": 3600000, "hr": 3600000}
TRUE_WORDS = ("true", "on", "yes", "y", "1")
FALSE_WORDS = ("false", "off", "no", "n", "0")
ROLE_ALIASES = {"master": "Promoted", "slave": "Unpromoted", "promoted": "Promoted",
                "unpromoted": "Unpromoted", "started": "Started", "stopped": "Stopped"}
DURATION_ATTRS = frozenset(("interval", "timeout", "start-delay"))
BOOL_ATTRS = frozenset(("enabled", "record-pending", "symmetrical", "influence", "require-all"))
SCORE_KEYS = frozenset(("score", "resource-stickiness", "priority", "migration-threshold"))
ROLE_KEYS = frozenset(("role", "rsc-role", "with-rsc-role"))
BOOL_KEYS = frozenset((
    "is-managed", "maintenance", "allow-migrate", "critical", "notify", "globally-unique", "ordered",
    "interleave", "symmetric-cluster", "stop-orphan-resources", "stop-orphan-actions",
    "start-failure-is-fatal", "enable-startup-probes", "shutdown-lock", "stop-all-resources",
    "startup-fencing", "concurrent-fencing", "have-watchdog", "allow-unhealthy-nodes"))


class PcmkError(ValueError):
    """
    A declaration, a CIB or a Pacemaker tool result that cannot be used; the message names the
    object and is already masked. A ValueError, so that a caller holding another copy of this
    module (Salt's loader and a sibling import each load one) catches it as ``ValueError``.
    """


class AgentNotFoundError(PcmkError):
    """The resource agent is not installed (``crm_resource --show-metadata`` does not know it)."""


class ConcurrentChangeError(PcmkError):
    """The CIB configuration changed between the read and the write."""


def parse_duration_ms(value):
    """
    Milliseconds (int) of a Pacemaker duration: ``30`` (seconds), ``30s``, ``1min``, ``500ms``,
    ``2h``, ISO 8601 ``PT5M``/``P1DT1S``; an int is seconds. None when ``value`` is not a duration
    (negative, fractional, unknown unit, bool, None).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value * 1000 if value >= 0 else None
    text = str(value).strip()
    match = DURATION_RE.match(text)
    if match:
        unit = match.group(2).lower() if match.group(2) else None
        return int(int(match.group(1)) * UNIT_MS[unit])
    match = ISO_RE.match(text)
    if match and text.upper() not in ("P", "PT"):
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return ((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000
    return None


def fmt_ms(millis):
    """``30s`` for 30000, ``1500ms`` for 1500 (str)."""
    if millis % 1000:
        return f"{millis}ms"
    return f"{millis // 1000}s"


def to_text(value):
    """The CIB text (str) of a declared scalar; YAML booleans become true/false. ValueError if not a
    scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValueError(f"{value!r} is not a scalar")


def bool_word(text):
    """True/False for Pacemaker's boolean spellings (true/on/yes/y/1, false/off/no/n/0), else None."""
    low = str(text).strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return None


def canon_score(value):
    """Canonical score (str): ``INFINITY``, ``-INFINITY`` or an integer; None if not a score."""
    try:
        text = to_text(value).strip()
    except ValueError:
        return None
    upper = text.upper()
    if upper in ("INFINITY", "+INFINITY", "INF", "+INF"):
        return "INFINITY"
    if upper in ("-INFINITY", "-INF"):
        return "-INFINITY"
    if re.match(r"^[+-]?\d+$", text):
        return str(int(text))
    return None


def canon_role(value):
    """Pacemaker 2.1 role name (Started, Stopped, Promoted, Unpromoted; Master/Slave mapped), or None."""
    if value is None:
        return None
    return ROLE_ALIASES.get(str(value).lower())


def is_id(value):
    """Whether ``value`` is a valid Pacemaker id (str starting with a letter or '_')."""
    return isinstance(value, str) and bool(ID_RE.match(value))


def is_duration_key(key):
    """Whether attribute/nvpair ``key`` holds a duration."""
    key = str(key)
    return (key in DURATION_ATTRS or key.endswith(("timeout", "-interval", "-delay"))
            or key in ("dc-deadtime", "shutdown-lock-limit"))


def is_bool_key(key):
    """Whether attribute/nvpair ``key`` holds a boolean."""
    key = str(key)
    return key in BOOL_ATTRS or key in BOOL_KEYS or key.endswith("-enabled")


def same_value(key, current, wanted):
    """Whether two CIB values of attribute/nvpair ``key`` mean the same: ``30`` = ``30s`` =
    ``30000ms`` for durations, ``inf`` = ``INFINITY`` for scores, ``Master`` = ``Promoted``,
    ``yes`` = ``true`` for booleans. Both None is the same; one None is not."""
    if current is None or wanted is None:
        return current is None and wanted is None
    current, wanted = str(current), str(wanted)
    if current == wanted:
        return True
    if is_duration_key(key):
        cur_ms, want_ms = parse_duration_ms(current), parse_duration_ms(wanted)
        if cur_ms is not None and cur_ms == want_ms:
            return True
    if key in SCORE_KEYS:
        cur_s, want_s = canon_score(current), canon_score(wanted)
        if cur_s is not None and cur_s == want_s:
            return True
    if key in ROLE_KEYS:
        return canon_role(current) is not None and canon_role(current) == canon_role(wanted)
    if is_bool_key(key):
        cur_b, want_b = bool_word(current), bool_word(wanted)
        return cur_b is not None and cur_b == want_b
    return False


def split_agent(agent):
    """(class, provider, type) of ``ocf:heartbeat:IPaddr2``; (class, None, type) of
    ``stonith:fence_x`` / ``systemd:foo``. ValueError for anything else."""
    parts = str(agent).split(":")
    if len(parts) == 3 and parts[0] == "ocf" and all(parts):
        return tuple(parts)
    if len(parts) == 2 and parts[0] not in ("ocf", "") and parts[1]:
        return parts[0], None, parts[1]
    raise ValueError(f"{agent!r} is not a resource agent (class:provider:type for ocf, class:type"
                     " otherwise)")
