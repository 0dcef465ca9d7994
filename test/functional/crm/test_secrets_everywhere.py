"""One secrets rule across the product: a parameter named ``api_token``, ``secret_key`` or ``*_password``
is masked the same way (``********``) in a CIB diff, a glance-api.conf diff, an error message and the
minion's debug log, in one real ``salt-call --local`` run (real cibadmin/crm_verify on a CIB file).

How this test was shown able to fail: with ``api_token`` dropped from the name rule of
_utils/glance_ha_secrets.py, the CIB diff shows the token in clear (seen)."""

import json
import os
import subprocess

import yaml
from crm_helpers import run

VALUES = {"api_token": "tok-8a7f3c", "secret_key": "key-41d9e2", "db_password": "pw-77b0c1"}
MASK = "********"


def test_secret_names_masked_in_cib_diff_conf_diff_errors_and_log(cib, tmp_path, state_tree, example_pillar,
                                                                   formula_root):
    attrs = "".join(f'<nvpair id="p_tok-{k}" name="{k}" value="{v}"/>' for k, v in VALUES.items())
    run("cibadmin", "--create", "--scope", "resources", "--xml-text",
        f'<primitive id="p_tok" class="ocf" provider="heartbeat" type="Dummy">'
        f'<instance_attributes id="p_tok-ia">{attrs}</instance_attributes></primitive>')
    assert all(v in cib.xml() for v in VALUES.values())   # really in the CIB: the checks below can fail

    tree = tmp_path / "states"
    tree.mkdir()
    params = json.dumps({k: v + "-new" for k, v in VALUES.items()})
    (tree / "secrets_everywhere.sls").write_text(f"""
secrets-cib-diff:
  crm.absent:
    - name: p_tok
secrets-error:
  crm.primitive_present:
    - name: p_bad
    - agent: ocf:heartbeat:Dummy
    - params: {params}
secrets-conf-diff:
  glance_ha.config_managed:
    - name: {tmp_path}/glance-api.conf
    - source: salt://glance_ha/templates/glance-api.conf.jinja
""")
    pillar_dir = tmp_path / "pillar"
    pillar_dir.mkdir()
    pillar = dict(example_pillar)
    pillar["glance_ha"] = dict(pillar["glance_ha"], config={"DEFAULT": dict(VALUES)})
    (pillar_dir / "top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (pillar_dir / "glance_ha.sls").write_text(yaml.safe_dump(pillar))
    (tmp_path / "minion").write_text(yaml.safe_dump({
        "id": "secrets-minion", "root_dir": str(tmp_path / "root"), "file_client": "local",
        "file_roots": {"base": [str(tree), str(state_tree)]}, "pillar_roots": {"base": [str(pillar_dir)]},
        "module_dirs": [str(formula_root / "_modules")], "states_dirs": [str(formula_root / "_states")],
        "utils_dirs": [str(formula_root / "_utils")]}))
    log_file = tmp_path / "minion-debug.log"
    out = subprocess.run(
        [str(formula_root / ".venv/bin/salt-call"), "--config-dir", str(tmp_path), "--local",
         "--log-file", str(log_file), "--log-file-level", "debug", "--out=json",
         "state.sls", "secrets_everywhere", "test=True"],
        capture_output=True, text=True, check=False, timeout=300,
        env=dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning"))
    ret = {r["__id__"]: r for r in json.loads(out.stdout)["local"].values()}

    cib_diff = ret["secrets-cib-diff"]
    assert cib_diff["result"] is None
    old_params = cib_diff["changes"]["p_tok"]["params"] if "p_tok" in cib_diff["changes"] \
        else cib_diff["changes"]["old"]["params"]
    assert {k: (v["old"] if isinstance(v, dict) else v) for k, v in old_params.items()} == \
        {k: MASK for k in VALUES}

    error = ret["secrets-error"]
    assert error["result"] is False and "p_bad" in error["comment"]

    conf = ret["secrets-conf-diff"]
    assert conf["result"] is None
    for name in VALUES:
        assert f"+{name} = {MASK}" in conf["changes"]["diff"]

    log = log_file.read_text()
    # The log holds this run's debug output, including the states' masked changes and errors.
    assert "[DEBUG   ]" in log and "Executing state crm.absent for [p_tok]" in log
    assert "Executing state glance_ha.config_managed" in log and "'api_token': '********'" in log
    assert "Nothing written: primitive p_bad" in log
    for text in (out.stdout, out.stderr, log):
        for value in VALUES.values():
            assert value not in text, value
