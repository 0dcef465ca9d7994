"""
Editing one option of an INI file's text (nova.conf's ``[glance] api_servers``), leaving every
other line as the operator wrote it. Pure: no Salt dunders, no I/O; texts are str.
"""

import re

_SECTION_LINE = re.compile(r"^\s*\[([^\]]+)\]\s*$")


def _option_line(key):
    return re.compile(r"^\s*" + re.escape(key) + r"\s*[=:]")


def get(text, section, key):
    """The value (str) of ``key`` in ``[section]`` of ``text`` (the last one wins, as in oslo.config),
    or None."""
    current, value, pattern = None, None, _option_line(key)
    for line in text.splitlines():
        match = _SECTION_LINE.match(line)
        if match:
            current = match.group(1).strip()
        elif current == section and pattern.match(line):
            value = re.split(r"[=:]", line, maxsplit=1)[1].strip()
    return value


def _scan(lines, section, key):
    """(indexes of the assignments of ``key`` in ``section``, index of the section's last non-blank
    line or None)."""
    pattern, in_section = _option_line(key), False
    assigns, section_end = [], None
    for i, line in enumerate(lines):
        match = _SECTION_LINE.match(line)
        if match:
            in_section = match.group(1).strip() == section
            if in_section:
                section_end = i
            continue
        if in_section and line.strip():
            section_end = i
            if pattern.match(line):
                assigns.append(i)
    return assigns, section_end


def set_option(text, section, key, value):
    """
    ``text`` with ``key = value`` set in ``[section]``: an existing (last) assignment is replaced in
    place, else the key is added at the end of the section, else the section is appended.
    """
    lines = text.splitlines(True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    assigns, section_end = _scan(lines, section, key)
    new_line = f"{key} = {value}\n"
    if assigns:
        lines[assigns[-1]] = new_line
    elif section_end is not None:
        lines.insert(section_end + 1, new_line)
    else:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines += [f"[{section}]\n", new_line]
    return "".join(lines)


def remove_option(text, section, key):
    """``text`` without any assignment of ``key`` in ``[section]`` (the section itself stays)."""
    lines = text.splitlines(True)
    assigns, _ = _scan(lines, section, key)
    return "".join(line for i, line in enumerate(lines) if i not in set(assigns))
