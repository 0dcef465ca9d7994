"""_states/keystone_catalog.py's writer rule (glance_ha.writer, _modules/glance_ha.py): crm.writer_status decides wherever the crm module is
loaded; without it an explicit writer names the minion and '' means this minion, unless Pacemaker is
installed. The crm module and Pacemaker binaries are facts of the host; stubbing __salt__ is the only
way to exercise every branch of the decision on one machine."""

import pytest

from test.modload import load


@pytest.fixture
def st():
    return load("_states/keystone_catalog.py", name="kc_states_under_test")


def _writer_env(st, status=None, binaries=(), minion="ctl1"):
    salt = {}
    if status is not None:
        salt["crm.writer_status"] = status
    opts = {"id": minion, "test": False}
    exe = load("_modules/glance_ha.py", __salt__=salt, __opts__=opts)
    exe._pacemaker_found = lambda: [b for b in exe.PACEMAKER_BINARIES if b in binaries]
    salt["glance_ha.writer"] = exe.writer
    st.__salt__ = salt
    st.__opts__ = opts


def test_writer_none_always_writes(st):
    _writer_env(st, status=lambda writer="": {"writer": False, "reason": ""})
    assert st._writer(None) == (True, "")


def test_writer_asks_crm(st):
    asked = []
    _writer_env(st, status=lambda writer="": asked.append(writer) or {"writer": writer == "ctl2", "reason": ""})
    assert st._writer("ctl2")[0] is True
    write, why = st._writer("")
    assert write is False and "Pacemaker DC" in why
    assert asked == ["ctl2", ""]
    ret = {"name": "glance", "result": None, "changes": {}, "comment": ""}
    assert st._not_writer(ret, "ctl3") and ret["result"] is True and "Not the writer" in ret["comment"]


def test_writer_without_crm(st):
    _writer_env(st, minion="ctl1")
    assert st._writer("ctl1")[0] is True
    assert st._writer("ctl2")[0] is False
    write, why = st._writer("")
    assert write is True and "No Pacemaker" in why
    _writer_env(st, binaries=("crmadmin",))
    write, why = st._writer("")
    assert write is None and "crmadmin" in why
    ret = {"name": "glance", "result": None, "changes": {}, "comment": ""}
    assert st._not_writer(ret, "") and ret["result"] is False


def test_writer_uses_crm_writer_status_reason(st):
    _writer_env(st, status=lambda writer="": {"writer": False, "reason": "the cluster has no DC now"})
    write, why = st._writer("")
    assert write is False and "no DC" in why
    _writer_env(st, status=lambda writer="": {"writer": True, "reason": "ctl1 is the DC"})
    assert st._writer("")[0] is True


def test_writer_crm_error_is_a_failure_not_a_write(st):
    from salt.exceptions import CommandExecutionError

    def broken(writer=""):
        raise CommandExecutionError("crmadmin -D failed")
    _writer_env(st, status=broken)
    write, why = st._writer("")
    assert write is None and "Cannot tell whether this minion is the writer" in why


def test_module_exports_only_states(st):
    public = sorted(n for n, v in vars(st).items() if callable(v) and not n.startswith("_")
                    and getattr(v, "__module__", None) == st.__name__)
    assert public == ["endpoints_absent", "endpoints_present", "service_absent", "service_present",
                      "user_present"]
