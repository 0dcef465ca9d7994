"""Salt loader (no daemons) with the formula's modules loaded straight from the checkout."""

import pytest
import salt.config
import yaml
from saltfactories.utils.functional import Loaders


@pytest.fixture(scope="session")
def minion_root(tmp_path_factory, example_pillar):
    root = tmp_path_factory.mktemp("minion-root")
    (root / "pillar").mkdir()
    (root / "pillar/top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (root / "pillar/glance_ha.sls").write_text(yaml.safe_dump(example_pillar))
    return root


@pytest.fixture(scope="session")
def minion_opts(minion_root, formula_root, state_tree):
    conf = {"id": "functional-minion", "root_dir": str(minion_root), "file_client": "local",
            "file_roots": {"base": [str(state_tree)]},
            "pillar_roots": {"base": [str(minion_root / "pillar")]},
            # reset_state() rmtree's the cachedir (extmods), so load from the checkout:
            "module_dirs": [str(formula_root / "_modules")],
            "states_dirs": [str(formula_root / "_states")],
            "log_file": str(minion_root / "minion.log"), "log_level_logfile": "debug"}
    (minion_root / "minion").write_text(yaml.safe_dump(conf))
    return salt.config.minion_config(str(minion_root / "minion"))


@pytest.fixture(scope="session")
def loaders(minion_opts):
    return Loaders(minion_opts)


@pytest.fixture(autouse=True)
def reset_loaders_state(loaders):
    try:
        yield
    finally:
        loaders.reset_state()


@pytest.fixture
def modules(loaders):
    return loaders.modules


@pytest.fixture
def states(loaders):
    return loaders.states
