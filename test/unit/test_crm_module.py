"""_modules/crm.py without a cluster: the tool runner masks what tools print; the writer election."""

import pytest

from test.modload import load


@pytest.fixture
def crm(monkeypatch):
    monkeypatch.delenv("CIB_file", raising=False)
    return load("_modules/crm.py", __context__={}, __grains__={"id": "ctl1"})


def test_tool_output_is_masked(crm):
    # A real process whose stderr echoes secrets (as crm_verify/cibadmin may): masked on the way in,
    # by value and by THE rule (an nvpair whose name is secret).
    _rc, _out, err = crm._run(["sh", "-c", ("echo 'bad value hunter2-x' >&2;"
                                            " echo '<nvpair name=\"api_token\" value=\"t0k\"/>' >&2; exit 1")],
                              secrets={"hunter2-x"})
    assert err == 'bad value ******** <nvpair name="api_token" value="********"/>'


def test_writer_status(crm, monkeypatch):
    assert crm.writer_status("ctl1") == {"writer": True, "reason": "the writer is minion 'ctl1'"}
    assert crm.writer_status("ctl9") == {"writer": False, "reason": "the writer is minion 'ctl9', not 'ctl1'"}
    monkeypatch.setenv("CIB_file", "/nonexistent/cib.xml")
    assert crm.writer_status("")["writer"] is True and "CIB_file" in crm.writer_status("")["reason"]
