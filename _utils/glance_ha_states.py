"""
The state return of every glance_ha state (salt/states/file.py conventions): ``{name, result,
changes, comment}``; under ``test=True`` a pending change is ``result: None`` with the would-be
diff in ``changes``. Pure: no dunders.
"""


def ret(name, result=True, changes=None, comment=""):
    """A state return dict (dict with keys name, result, changes, comment)."""
    return {"name": name, "result": result, "changes": changes or {}, "comment": comment}


def pending(ret_, test, changes, would, done):
    """
    Fill ``ret_`` for a change: with ``test`` true, result None, the ``changes`` and comment
    ``would``; otherwise the ``changes`` and comment ``done``. Returns ``ret_``.
    """
    ret_["changes"] = changes
    if test:
        ret_["result"] = None
        ret_["comment"] = would
    else:
        ret_["comment"] = done
    return ret_
