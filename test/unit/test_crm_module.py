"""_modules/crm.py without a cluster: the tool runner masks what tools print; the writer election."""

import os
import threading
import time

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


# --------------------------------------------------------------------------- the writer rules
# The Pacemaker tools' own answers (Pacemaker 2.1.5, this machine's): `crmadmin -D` prints
# "Designated Controller is: <name>", or crm_str(NULL) = "<null>" while none is elected (newer releases:
# "not yet elected"), and blocks while the controller restarts; `crm_node -n` the node name; `crm_node -q`
# 1, or 0 with exit code 106. Stand-ins on PATH print them, so
# the real tool runner (_run) is exercised.
@pytest.fixture
def tools(tmp_path, monkeypatch):
    answers = tmp_path / "answers"
    answers.mkdir()
    for tool in ("crmadmin", "crm_node"):
        script = tmp_path / tool
        # crm_node -q exits 106 when it prints 0 (no quorum), as the real one does
        script.write_text(f'#!/bin/sh\nf="{answers}/{tool}$1"\n[ -f "$f" ] || exit 102\ncat "$f"\n'
                          '[ "$1" = -q ] && [ "$(cat "$f")" = 0 ] && exit 106\nexit 0\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")

    def set_answers(dc="ctl1", me="ctl1", quorum="1"):
        (answers / "crmadmin-D").write_text(f"Designated Controller is: {dc}\n")
        (answers / "crm_node-n").write_text(f"{me}\n")
        (answers / "crm_node-q").write_text(f"{quorum}\n")
    return set_answers


def test_writer_is_the_dc_with_quorum(crm, tools):
    tools(dc="ctl1", me="ctl1", quorum="1")
    assert crm.writer_status("") == {"writer": True, "reason": "the writer is the DC, ctl1, which has quorum"}
    crm.__context__.clear()
    tools(dc="ctl2", me="ctl1", quorum="1")
    assert crm.writer_status("") == {"writer": False, "reason": "the writer is the DC, ctl2 (this is ctl1)"}


def test_no_quorum_never_writes(crm, tools):
    tools(dc="ctl1", me="ctl1", quorum="0")       # a partition's own DC without quorum
    status = crm.writer_status("")
    assert status["writer"] is False
    assert status["reason"] == "this node (ctl1) is in a partition without quorum: it never writes"


@pytest.mark.parametrize("answer", ["<null>", "not yet elected", "(null)"])
def test_no_dc_yet_waits_then_fails(crm, tools, answer):
    tools(dc=answer)
    assert crm.dc() is None, f"{answer!r} taken as a node name"
    start = time.monotonic()
    with pytest.raises(crm.CrmError) as info:
        crm.writer_status("", dc_wait=3)
    assert 3 <= time.monotonic() - start < 8
    assert "elected no DC (Designated Controller) within 3 s" in str(info.value)


def test_dc_elected_during_the_wait(crm, tools):
    tools(dc="<null>")
    later = threading.Timer(1.0, lambda: tools(dc="ctl1", me="ctl1", quorum="1"))
    later.start()
    try:
        assert crm.writer_status("", dc_wait=10)["writer"] is True
    finally:
        later.cancel()


def test_controller_not_answering_is_no_dc(crm, tools, tmp_path, monkeypatch):
    hang = tmp_path / "hang"
    hang.mkdir()
    (hang / "crmadmin").write_text("#!/bin/sh\nexec sleep 60\n")
    (hang / "crmadmin").chmod(0o755)
    monkeypatch.setenv("PATH", f"{hang}:{os.environ['PATH']}")
    monkeypatch.setattr(crm, "DC_QUERY_TIMEOUT", 1)
    assert crm.dc() is None
