"""glance_ha.service: the distribution's glance-api is kept from starting BEFORE its package is installed,
and stopped and disabled where it runs.

sysvinit, for real (inside the sandbox: /etc is a copy-on-write overlay): Debian 12's glance-api package's
own init script, update-rc.d and invoke-rc.d decide as the package's postinst makes them decide
(`update-rc.d glance-api defaults; invoke-rc.d glance-api start`). This machine runs no init system, so
the one thing faked is the runlevel (`runlevel` answers "N 2", as on a booted sysvinit controller) and the
machine's blanket policy-rc.d is hidden, both in a child mount namespace of that command only.

systemd: this machine has no systemd, so the systemd path is shown by its rendered states and their order
(service.masked before pkg.installed), not by a running systemd."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import salt.config
import yaml
from saltfactories.utils.functional import Loaders

from test.conftest import deep_merge, wipe
from test.functional.conftest import minion_config

INIT = Path("/etc/init.d/glance-api")
LEVELS = "0123456S"


def _loaders(tmp_path_factory, formula_root, state_tree, example_pillar, init):
    root = tmp_path_factory.mktemp(f"minion-{init}")
    (root / "pillar").mkdir()
    (root / "pillar/top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (root / "pillar/glance_ha.sls").write_text(yaml.safe_dump(example_pillar))
    minion_config(root, f"minion-{init}", state_tree, formula_root)
    with open(root / "minion", "a", encoding="utf-8") as conf:
        conf.write(yaml.safe_dump({"grains": {"init": init}}))   # static grains win over core grains
    return Loaders(salt.config.minion_config(str(root / "minion")))


@pytest.fixture(scope="module", params=["sysvinit", "systemd"])
def init_loaders(request, tmp_path_factory, formula_root, state_tree, example_pillar):
    loaders = _loaders(tmp_path_factory, formula_root, state_tree, example_pillar, request.param)
    yield request.param, loaders
    loaders.reset_state()


def test_prevented_before_the_package(init_loaders):
    """Rendered without asking the service manager anything (no render-time probe): the prevention
    states exist on a fresh node and require_in the package state."""
    init, loaders = init_loaders
    assert loaders.grains["init"] == init
    show = loaders.modules.state.show_sls("glance_ha.service")
    assert isinstance(show, dict), show
    fun, args = _state(show, "glance_ha-distro-service-stopped")
    assert (fun, args["enable"]) == ("service.dead", False)
    assert {"pkg": "glance_ha-packages"} in args["require_in"]
    if init == "systemd":
        fun, args = _state(show, "glance_ha-distro-service-masked")
        assert fun == "service.masked" and {"pkg": "glance_ha-packages"} in args["require_in"]
        assert "glance_ha-distro-service-disabled" not in show
    else:
        fun, args = _state(show, "glance_ha-distro-service-disabled")
        assert fun == "file.symlink" and {"pkg": "glance_ha-packages"} in args["require_in"]
        assert "glance_ha-distro-service-masked" not in show
    fun, args = _state(show, "glance_ha-distro-service")
    assert fun == "service.dead" and {"pkg": "glance_ha-packages"} in args["require"]


def _state(show, sid):
    """(module.function, {argument: value}) of state ``sid`` in show_sls output."""
    ((module, body),) = [(k, v) for k, v in show[sid].items() if not k.startswith("__")]
    fun = next(x for x in body if isinstance(x, str))
    args = {}
    for item in body:
        if isinstance(item, dict):
            args.update(item)
    return f"{module}.{fun}", args


def test_no_service_manager_no_state(modules):
    """The functional minion here has init 'unknown' (no service manager): nothing to stop."""
    if modules.grains.get("init") not in ("unknown", ""):
        pytest.skip("this machine has a service manager")
    show = modules.state.show_sls("glance_ha.service")
    assert not [k for k in show if k.startswith("glance_ha-distro-service")]


def _postinst(tmp_path, *commands):
    """Run shell ``commands`` as the package's postinst runs them, on a booted sysvinit system in runlevel 2:
    `runlevel` answers "N 2" and the machine's blanket policy-rc.d is hidden (this command only)."""
    fake = tmp_path / "runlevel"
    fake.write_text("#!/bin/sh\necho N 2\n")
    fake.chmod(0o755)
    script = (f"mount --bind {fake} /sbin/runlevel && "
              "{ [ ! -e /usr/sbin/policy-rc.d ] || mount --bind /dev/null /usr/sbin/policy-rc.d; } && "
              + " ; ".join(commands))
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=120, check=False)


def _links():
    return sorted(p.name + "@" + p.parent.name for level in LEVELS
                  for p in Path(f"/etc/rc{level}.d").glob("[SK][0-9][0-9]glance-api"))


def _fresh_node(tmp_path):
    """As before the package is installed: no init script, no rc.d links (the sandbox overlay only)."""
    for link in Path("/etc").glob("rc?.d/[SK][0-9][0-9]glance-api"):
        link.unlink()
    saved = tmp_path / "glance-api.init"
    shutil.copy2(INIT, saved)
    INIT.unlink()
    return saved


def _no_daemon():
    out = subprocess.run(["pgrep", "-f", "/usr/bin/glance-api"], capture_output=True, text=True, check=False)
    return out.stdout.split()


@pytest.mark.skipif(not INIT.exists() or not shutil.which("invoke-rc.d") or os.geteuid() != 0,
                    reason="needs Debian's glance-api package, invoke-rc.d and root (in the sandbox)")
def test_sysvinit_postinst_does_not_start_it(tmp_path, tmp_path_factory, formula_root, state_tree,
                                             example_pillar):
    assert os.environ.get("GLANCE_HA_SANDBOX") == "1", "must run inside scripts/sandbox (it edits /etc)"
    query = "invoke-rc.d --query glance-api start; echo rc=$?"
    saved = _fresh_node(tmp_path)
    try:
        # control: without the formula, the package's postinst would start its glance-api
        shutil.copy2(saved, INIT)
        control = _postinst(tmp_path, "update-rc.d glance-api defaults", query)
        assert "rc=104" in control.stdout, control.stdout + control.stderr   # 104: run the init script
        assert any(name.startswith("S") for name in _links())

        # fresh node again; the formula's states run before the package state
        _fresh_node(tmp_path)
        loaders = _loaders(tmp_path_factory, formula_root, state_tree, example_pillar, "sysvinit")
        pillar = deep_merge(example_pillar, {"glance_ha": {"lookup": {"pkgs": []}}})
        ret = {r.id: r for r in loaders.modules.state.sls("glance_ha.service", pillar=pillar)}
        assert all(r.result is True for r in ret.values()), ret
        assert _links() == sorted(f"K01glance-api@rc{level}.d" for level in "0123456")

        # dpkg unpacks the init script; the postinst runs
        shutil.copy2(saved, INIT)
        after = _postinst(tmp_path, "update-rc.d glance-api defaults", query, "invoke-rc.d glance-api start",
                          "echo start_rc=$?")
        assert "rc=101" in after.stdout, after.stdout + after.stderr     # 101: action forbidden
        assert "start_rc=0" in after.stdout
        assert not _no_daemon(), "the packaged glance-api was started"
        assert not [n for n in _links() if n.startswith("S")], "update-rc.d defaults enabled it"

        # installed now: the second run changes nothing and keeps it disabled
        again = {r.id: r for r in loaders.modules.state.sls("glance_ha.service", pillar=pillar)}
        assert {k: r.changes for k, r in again.items() if r.changes} == {}
        assert all(r.result is True for r in again.values()), again
        loaders.reset_state()
    finally:
        wipe(*[str(p) for p in Path("/etc").glob("rc?.d/[SK][0-9][0-9]glance-api")])
        shutil.copy2(saved, INIT)
