"""
The one secrets rule of the glance_ha formula, and its one mask.

What a secret is:

- a value whose *name* contains ``password``, ``passwd``, ``secret`` or ``token``, or ends in
  ``_key`` (``os_password``, ``api_token``, ``secret_key``, ``OS_PASSWORD``), in any mapping, file,
  CIB parameter or error message;
- a value whose name is listed in the pillar key ``glance_ha:cluster:secret_params``;
- the ``user:password@`` part of any URL.

Every secret value is replaced by :data:`MASK` in every form it takes when rendered: as written,
URL-quoted (``connection``, ``transport_url``), oslo.config-escaped (``$`` -> ``$$``), quoted for
oslo.config, and XML-escaped (the CIB). Pure: no Salt dunders, no I/O. Loaded by Salt as
``__utils__['glance_ha_secrets.<function>']`` and importable as a plain module by tests.
"""

import difflib
import re
import urllib.parse
from xml.sax.saxutils import escape as _xml_escape

MASK = "********"
NAME_RE = re.compile(r"password|passwd|secret|token|_key$", re.IGNORECASE)
# "option = value", "OPTION=value", "name: value" lines whose name is secret.
_OPTION_LINE_RE = re.compile(
    r"^(?P<head>[-+ ]?\s*(?P<name>[A-Za-z0-9_.-]+)\s*[=:]\s*)(?P<value>\S.*)$")
# The authority of a URL (several hosts, comma-separated, as oslo.messaging's transport_url has).
_URL_AUTHORITY_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<auth>[^/\s?#]*)", re.IGNORECASE)
_USERINFO_RE = re.compile(r"(?P<user>(?:^|,)[^:,@]*:)[^,@]*(?=@)")
# XML attributes of an nvpair: name="..." ... value="..." (either order).
_NVPAIR_RE = re.compile(r"<nvpair\b[^>]*>", re.IGNORECASE)
_ATTR_RE = re.compile(r'(?P<key>\bname|\bvalue)\s*=\s*(?P<q>["\'])(?P<val>.*?)(?P=q)', re.IGNORECASE)


def is_secret(name, extra=()):
    """
    Whether ``name`` (an option, parameter or pillar key; str) names a secret: by the name rule
    above, or listed in ``extra`` (iterable of names, case-insensitive). Returns bool.
    """
    low = str(name).lower().strip()
    if NAME_RE.search(low):
        return True
    return low in {str(item).lower().strip() for item in (extra or ())}


def collect(data, extra=()):
    """
    Every secret value (set of non-empty str) in ``data``: a mapping or list, nested to any depth,
    whose keys pass :func:`is_secret`.
    """
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if is_secret(key, extra) and isinstance(value, (str, int, float)) \
                        and not isinstance(value, bool) and str(value):
                    found.add(str(value))
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    walk(data)
    return found


def forms(secrets):
    """
    Every form the values in ``secrets`` (iterable of str) take when rendered, longest first
    (list of str): as written, URL-quoted, oslo.config-escaped (and both), XML-escaped.
    """
    out = set()
    for value in secrets or ():
        if value in (None, ""):
            continue
        value = str(value)
        quoted = urllib.parse.quote(value, safe="")
        for form in (value, quoted, urllib.parse.quote_plus(value, safe="")):
            out.update({form, form.replace("$", "$$")})
        out.add(_xml_escape(value, {'"': "&quot;", "'": "&apos;"}))
        out.add(_xml_escape(value, {'"': "&quot;"}))
    return sorted(out, key=len, reverse=True)


def _mask_line(line, extra):
    newline = "\n" if line.endswith("\n") else ""
    body = line[: len(line) - len(newline)]
    match = _OPTION_LINE_RE.match(body)
    if match and is_secret(match.group("name"), extra) and not match.group("value").startswith(MASK):
        body = match.group("head") + MASK
    body = _URL_AUTHORITY_RE.sub(_mask_authority, body)
    body = _NVPAIR_RE.sub(lambda m: _mask_nvpair(m.group(0), extra), body)
    return body + newline


def _mask_authority(match):
    auth = _USERINFO_RE.sub(lambda m: m.group("user") + MASK, match.group("auth"))
    return match.group("scheme") + auth


def _mask_nvpair(tag, extra):
    attrs = {m.group("key").lower(): m.group("val") for m in _ATTR_RE.finditer(tag)}
    if "value" not in attrs or not is_secret(attrs.get("name", ""), extra):
        return tag
    return _ATTR_RE.sub(lambda m: m.group(0) if m.group("key").lower() != "value"
                        else f'{m.group("key")}={m.group("q")}{MASK}{m.group("q")}', tag)


def mask(text, secrets=(), extra=()):
    """
    ``text`` (str; None is returned as is) with every form of every value in ``secrets`` replaced
    by :data:`MASK`, and structurally: the value of every secret-named ``option = value`` line and
    ``<nvpair name= value=>`` (names per :func:`is_secret` with ``extra``), and the password of every
    URL. Old values nobody knows any more (a rotated password, a hand edit) are masked by the
    structural rules.
    """
    if text is None:
        return None
    text = str(text)
    for form in forms(secrets):
        text = text.replace(form, MASK)
    return "".join(_mask_line(line, extra) for line in text.splitlines(True))


def mask_data(data, secrets=(), extra=()):
    """``data`` (nested dicts/lists/str) with :func:`mask` applied to every string, and every value
    whose key is secret replaced by :data:`MASK`."""
    if isinstance(data, dict):
        return {key: (MASK if is_secret(key, extra) and isinstance(value, (str, int, float))
                      and not isinstance(value, bool) and str(value) != ""
                      else mask_data(value, secrets, extra))
                for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [mask_data(item, secrets, extra) for item in data]
    if isinstance(data, str):
        return mask(data, secrets, extra)
    return data


def masked_diff(old, new, secrets=(), path="file", extra=()):
    """
    Unified diff (str, one line of context) of texts ``old`` -> ``new`` with every line masked by
    :func:`mask`. The real texts are diffed, so a changed password still shows as a changed line.
    """
    lines = difflib.unified_diff((old or "").splitlines(True), (new or "").splitlines(True),
                                 fromfile=path, tofile=path, n=1)
    out = []
    for line in lines:
        line = line if line.endswith("\n") else line + "\n"
        out.append(mask(line, secrets, extra))
    return "".join(out)
