"""`[verify.gateway]`: the shipped checks validate, bad input is one line naming the field,
and a snippet that can't be read or would listen elsewhere is an error naming it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from qjson_tasks.app.tools import CONFIG_DIR
from qjson_tasks.config.load import find_target, load_target
from qjson_tasks.config.model import Gateway
from qjson_tasks.errors import ConfigError, VerificationError
from qjson_tasks.verify.nginx_conf import gateway_snippet
from tests.unit.configs import ABSOLUTE, mutated, write

GOOD: dict[str, Any] = {
    "nginx": "/usr/sbin/nginx",
    "snippet": "gateway.conf",
    "body": '{"model":"gpt-4o"}',
    "expect": "model=gpt-4o",
}
GATEWAY_KEYS = "allowed: body, expect, modules, nginx, path, snippet, status, timeout, worker_user"
SNIPPET = "server {\n    listen @LISTEN@;\n    location = /qjson { return 200; }\n}\n"


def gateway_toml(**changes: Any) -> str:
    gateway = {**GOOD, **changes}
    return mutated(("verify.gateway", {k: v for k, v in gateway.items() if v is not None}))


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path / "targets" / "gw.toml", text)
    with pytest.raises(ConfigError) as info:
        load_target(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


@pytest.mark.parametrize("name", ["gateway", "apisix", "openresty"])
def test_shipped_targets_configure_the_check_with_a_usable_snippet(name: str) -> None:
    target = find_target(name, CONFIG_DIR)
    gateway = target.config.verify.gateway
    assert gateway is not None
    snippet = gateway_snippet(target)
    assert snippet is not None and "listen @LISTEN@;" in snippet
    assert 'require("qjson")' in snippet


def test_openresty_and_apisix_use_openrestys_nginx() -> None:
    for name in ("apisix", "openresty"):
        gateway = find_target(name, CONFIG_DIR).config.verify.gateway
        assert gateway is not None
        assert gateway.nginx == "/usr/local/openresty/nginx/sbin/nginx"
        assert gateway.modules == ()  # OpenResty's nginx has the Lua module built in


def test_targets_without_the_check_have_none() -> None:
    target = find_target("offline", CONFIG_DIR)
    assert target.config.verify.gateway is None
    assert gateway_snippet(target) is None


def test_defaults(tmp_path: Path) -> None:
    gateway = Gateway.model_validate(GOOD)
    assert (gateway.path, gateway.status, gateway.modules) == ("/qjson", 200, ())
    assert gateway.worker_user is None and gateway.timeout == 10.0


BAD: list[tuple[dict[str, Any], list[str]]] = [
    ({"nginxx": "/usr/sbin/nginx"}, ["verify.gateway.nginxx: unknown key", GATEWAY_KEYS]),
    (
        {"nginx": None},
        ["verify.gateway.nginx: missing required field (add nginx = ... under [verify.gateway])"],
    ),
    ({"nginx": "sbin/nginx"}, ["verify.gateway.nginx: 'sbin/nginx' ", ABSOLUTE]),
    ({"body": None}, ["verify.gateway.body: missing required field"]),
    ({"expect": None}, ["verify.gateway.expect: missing required field"]),
    ({"snippet": None}, ["verify.gateway.snippet: missing required field"]),
    (
        {"body": "model=gpt-4o"},
        ["verify.gateway.body: 'model=gpt-4o' is not JSON (Expecting value", "for the worker"],
    ),
    ({"path": "qjson"}, ["verify.gateway.path: 'qjson' is not a request path: '/' then"]),
    ({"path": "/a b"}, ["verify.gateway.path: '/a b' is not a request path"]),
    (
        {"modules": ["modules-enabled/*.conf"]},
        ["verify.gateway.modules[0]: 'modules-enabled/*.conf' must be an absolute path"],
    ),
    ({"modules": ["/x.conf; daemon on"]}, ["verify.gateway.modules[0]: ", "without ';'"]),
    ({"status": 700}, ["verify.gateway.status: ", "less than or equal to 599"]),
    ({"timeout": 0}, ["verify.gateway.timeout: ", "greater than 0"]),
    ({"worker_user": "no body"}, ["verify.gateway.worker_user: 'no body' is not a user"]),
]


@pytest.mark.parametrize(("changes", "fragments"), BAD, ids=[str(c) for c, _ in BAD])
def test_bad_input_is_one_line_naming_the_field(
    tmp_path: Path, changes: dict[str, Any], fragments: list[str]
) -> None:
    message = load_error(tmp_path, gateway_toml(**changes))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_the_gateway_table_is_listed_among_verifys_keys(tmp_path: Path) -> None:
    message = load_error(tmp_path, mutated(("verify.gatway", GOOD)))
    assert "verify.gatway: unknown key (allowed: artifacts, gateway, smoke_script)" in message


def test_unknown_keys_are_forbidden() -> None:
    with pytest.raises(ValidationError) as info:
        Gateway.model_validate({**GOOD, "listen": "0.0.0.0:80"})
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]


def target_with_snippet(tmp_path: Path, text: str | None) -> Path:
    path = write(tmp_path / "targets" / "gw.toml", gateway_toml())
    if text is not None:
        write(path.parent / "gateway.conf", text)
    return path


def snippet_error(path: Path) -> str:
    with pytest.raises(VerificationError) as info:
        gateway_snippet(load_target(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: verify.gateway.snippet: "), message
    return message


def test_the_snippet_is_read_relative_to_the_target_file(tmp_path: Path) -> None:
    path = target_with_snippet(tmp_path, SNIPPET)
    assert gateway_snippet(load_target(path)) == SNIPPET


def test_a_missing_snippet_names_the_file(tmp_path: Path) -> None:
    path = target_with_snippet(tmp_path, None)
    message = snippet_error(path)
    assert f"cannot read '{path.parent / 'gateway.conf'}': No such file or directory" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("server { location / { return 200; } }", "no server listens on @LISTEN@"),
        (
            "server {\n    listen 0.0.0.0:80;\n}\n",
            "`listen 0.0.0.0:80`: the check listens only where it chooses",
        ),
        (
            "server { listen @LISTEN@; }\nserver { listen 8080 default_server; }\n",
            "`listen 8080`",
        ),
    ],
)
def test_a_snippet_must_listen_on_the_checks_address_only(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = target_with_snippet(tmp_path, text)
    message = snippet_error(path)
    assert f"{path.parent / 'gateway.conf'}: " in message
    assert fragment in message, message


def test_a_listen_in_a_comment_does_not_count(tmp_path: Path) -> None:
    path = target_with_snippet(tmp_path, "# listen 80;\n" + SNIPPET)
    assert gateway_snippet(load_target(path)) is not None
