"""A real salt-master and salt-minion (pytest-salt-factories), once per session, inside the sandbox."""

import os
import subprocess

import pytest
import yaml


@pytest.fixture(scope="session")
def salt_factories_config():
    return {"slow_stop": False}


@pytest.fixture(scope="session")
def pillar_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("pillar")
    (path / "top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (path / "glance_ha.sls").write_text("{}\n")
    return path


@pytest.fixture(scope="session")
def set_pillar(pillar_dir, salt_call_cli):
    """Replace the minion's glance_ha pillar and refresh it."""
    def _set(pillar):
        (pillar_dir / "glance_ha.sls").write_text(yaml.safe_dump(pillar))
        ret = salt_call_cli.run("saltutil.refresh_pillar", "wait=True")
        assert ret.returncode == 0, ret
    return _set


@pytest.fixture(scope="session")
def salt_master(salt_factories, state_tree, pillar_dir):
    factory = salt_factories.salt_master_daemon("glance-ha-master", overrides={
        "file_roots": {"base": [str(state_tree)]},
        "pillar_roots": {"base": [str(pillar_dir)]},
        "auto_accept": True, "log_level_logfile": "info"})
    with factory.started(start_timeout=120):
        yield factory


SEED = ('<cluster_property_set id="cib-bootstrap-options">'
        '<nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>'
        '</cluster_property_set>')
# Every crm_verify the minion runs lingers 0.3 s under its own name: a `ps` sampler then provably sees
# the run's cluster step (the command line is crm_verify's own, unchanged).
CRM_VERIFY_SHIM = "#!/bin/sh\nsleep 0.3\nexec /usr/sbin/crm_verify \"$@\"\n"


@pytest.fixture(scope="session")
def cib_file(tmp_path_factory):
    """The minion's cluster: a CIB file (``CIB_file`` in its environment, so the crm module reads and
    writes it with the real Pacemaker tools and this minion is the writer), fencing off."""
    path = tmp_path_factory.mktemp("cib") / "cib.xml"
    path.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
    path.chmod(0o600)
    subprocess.run(["cibadmin", "--create", "--scope", "crm_config", "--xml-text", SEED], check=True,
                   env=dict(os.environ, CIB_file=str(path)), capture_output=True)
    return path


@pytest.fixture(scope="session")
def salt_minion(salt_master, cib_file, tmp_path_factory):
    shim = tmp_path_factory.mktemp("shim")
    (shim / "crm_verify").write_text(CRM_VERIFY_SHIM)
    (shim / "crm_verify").chmod(0o755)
    environ = dict(os.environ, CIB_file=str(cib_file), PATH=f"{shim}:{os.environ.get('PATH', '')}")
    factory = salt_master.salt_minion_daemon("glance-ha-minion", overrides={"log_level_logfile": "debug"})
    factory.environ = environ   # the factories manager passes its own environ: this minion's replaces it
    with factory.started(start_timeout=120):
        ret = factory.salt_call_cli(timeout=120).run("saltutil.sync_all")
        assert ret.returncode == 0, ret
        yield factory


@pytest.fixture(scope="session")
def salt_cli(salt_master):
    return salt_master.salt_cli(timeout=300)


@pytest.fixture(scope="session")
def salt_call_cli(salt_minion):
    return salt_minion.salt_call_cli(timeout=300)
