"""_utils/glance_ha_keystone.py's rules for the service identity and for which image service is the
formula's: services found by type, the name only disambiguating; the paths keystone_catalog.api reaches."""

from test.modload import load

kc = load("_utils/glance_ha_keystone.py")

KEY = "glance_ha:endpoints:service_name"


def svc(sid, name, stype="image"):
    return {"id": sid, "name": name, "type": stype}


def test_no_image_service_create_ours():
    assert kc.choose_service([], "glance", "image", KEY) == (None, None)


def test_ours_found_by_name_among_the_type():
    ours = svc("a1", "glance")
    assert kc.choose_service([ours], "glance", "image", KEY) == (ours, None)
    assert kc.choose_service([svc("b2", "other"), ours], "glance", "image", KEY) == (ours, None)


def test_other_name_refused_with_id_and_key():
    found, refusal = kc.choose_service([svc("f00d", "Image Service")], "glance", "image", KEY)
    assert found is None
    assert "f00d" in refusal and "'Image Service'" in refusal and "Nothing was changed" in refusal
    assert f"set {KEY}: 'Image Service'" in refusal


def test_several_others_refused_all_ids_named():
    _found, refusal = kc.choose_service([svc("b", "x"), svc("a", "y")], "glance", "image", KEY)
    assert "(id a)" in refusal and "(id b)" in refusal and KEY in refusal


def test_two_with_our_name_refused():
    _found, refusal = kc.choose_service([svc("b", "glance"), svc("a", "glance")], "glance", "image", KEY)
    assert "ids a, b" in refusal and "Nothing was changed" in refusal


def test_refusal_without_key_names_the_argument():
    _found, refusal = kc.choose_service([svc("c", "Image Service")], "glance", "image")
    assert "set name: 'Image Service'" in refusal


def test_api_paths():
    for method, path in [("GET", "/users?name=glance"), ("POST", "/auth/tokens"), ("PUT", "/projects/p/users/u/roles/r"),
                         ("GET", "/role_assignments"), ("PATCH", "/services/x"), ("DELETE", "/endpoints/e")]:
        assert kc.api_path_problem(method, path) is None, path
    for method, path in [("GET", "/credentials"), ("GET", "/auth/tokens"), ("GET", "users"),
                         ("GET", "/users/../credentials"), ("GET", "/OS-TRUST/trusts"), ("BREW", "/users")]:
        assert kc.api_path_problem(method, path), path


def test_user_changes_and_roles_rule():
    user = {"id": "u", "enabled": True, "default_project_id": "p"}
    assert kc.user_changes(user, None, True) == {}
    assert kc.user_changes(user, "q", False) == {"default_project_id": "q", "enabled": False}
    assert kc.roles_problem(["admin", "service"]) is None
    assert kc.roles_problem([]) and kc.roles_problem("admin") and kc.roles_problem(["a", "a"])
    assert kc.roles_problem(["a", ""]) and kc.roles_problem(["a", 1])


def test_merge_auth_profile_then_kwargs_empty_overrides_nothing():
    keys = ("auth_url", "username", "password", "project_name", "region")
    auth, missing = kc.merge_auth(keys, {"region": "R1"}, {"username": "admin", "password": "p", "region": ""},
                                  {"username": "", "auth_url": "http://h:5000/v3", "other": 1})
    assert auth == {"region": "R1", "username": "admin", "password": "p", "auth_url": "http://h:5000/v3"}
    assert missing == ["project_name"]


def test_http_error_wording():
    assert "rejected the credentials of user 'a'" in kc.http_error(401, "GET", "u", "http://k/v3", "user 'a'", "x")
    assert "HTTP 403, needs the admin role" in kc.http_error(403, "POST", "u", "k", "user 'a'", "")
    assert kc.http_error(500, "GET", "http://k/v3/x", "k", "w", "boom") == "GET http://k/v3/x: HTTP 500: boom"
