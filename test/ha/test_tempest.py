"""tempest's image API tests (lab/tempest.py) on the session's lab, through the public VIP: the image
endpoint comes from the Keystone catalog, web-download reads from the lab's services namespace, and
every test passes or is skipped by tempest itself, except those in lab/tempest-exclude.txt."""

import pytest

from lab.tempest import EXCLUDE, VENV_TEMPEST, TempestRun, exclusions


@pytest.fixture(scope="module")
def tempest(lab, first_apply):
    if not (VENV_TEMPEST / "bin/tempest").exists():
        pytest.skip(f"{VENV_TEMPEST}/bin/tempest missing (scripts/bootstrap)")
    return TempestRun(lab, log=lambda msg: print(msg, flush=True))


def test_every_exclusion_gives_its_reason():
    for regex, reason in exclusions():
        assert regex.startswith("^tempest\\.api\\.image\\.") and reason, (EXCLUDE, regex)


def test_tempest_image_api_through_the_public_vip(lab, baseline, tempest):
    prep = tempest.prepare()
    assert prep["endpoints"]["public"] == lab.image_url(public=True)
    r = tempest.run("public")
    print({k: r[k] for k in ("ran", "passed", "skipped", "failed", "seconds", "skips")})
    assert r["failed"] == 0 and r["failures"] == [], r["failures"]
    assert r["rc"] == 0, r["output"]
    assert r["passed"] >= 50 and r["ran"] == r["passed"] + r["skipped"], r
    assert (tempest.dir / "public/tempest.conf").stat().st_mode & 0o077 == 0  # holds the admin password
    # tempest logs every request it makes: none of the lab's passwords may be in what it wrote.
    secrets = [v for v in lab.secret.values() if isinstance(v, str) and len(v) >= 8]
    for path in (tempest.dir / "public").rglob("*"):
        if path.is_file() and path.name != "tempest.conf":
            data = path.read_bytes()
            assert not [s for s in secrets if s.encode() in data], f"a lab password in {path}"
