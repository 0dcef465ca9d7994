"""A real salt-master and salt-minion (pytest-salt-factories), once per session, inside the sandbox."""

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


@pytest.fixture(scope="session")
def salt_minion(salt_master):
    factory = salt_master.salt_minion_daemon("glance-ha-minion", overrides={"log_level_logfile": "debug"})
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
