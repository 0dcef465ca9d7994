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


def not_writer(ret_, write, comment):
    """
    For a state that writes shared state: with ``write`` as ``glance_ha.writer`` decided it (True:
    this minion writes; False: another one does; None: cannot tell), fill ``ret_`` (result True for
    False, False for None; ``comment``) and return True when this minion must not write.
    """
    if write:
        return False
    ret_["result"] = write is not None
    ret_["comment"] = comment
    return True
