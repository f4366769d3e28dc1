"""The gateway check's nginx.conf and its reading of what nginx says."""

from __future__ import annotations

from qjson_tasks.verify import nginx_conf

SNIPPET = "server {\n    listen @LISTEN@;\n}\n"


def test_render_puts_the_snippet_in_the_http_block_on_the_chosen_port() -> None:
    conf = nginx_conf.render(SNIPPET, 4711, ("/etc/nginx/modules-enabled/*.conf",), "user a b;\n")
    lines = conf.splitlines()
    assert lines[1] == "include /etc/nginx/modules-enabled/*.conf;"
    assert lines.index("user a b;") < lines.index("http {")
    assert "        listen 127.0.0.1:4711;" in lines
    assert lines.index("        listen 127.0.0.1:4711;") > lines.index("http {")
    assert conf.endswith("}\n}\n")
    for kind in nginx_conf.TEMP_PATHS:
        assert f"    {kind}_temp_path /tmp/qjt-gateway/{kind};" in lines


def test_render_without_modules_or_user() -> None:
    conf = nginx_conf.render(SNIPPET, 1)
    assert "include" not in conf and "\nuser " not in conf


def test_user_directive_only_for_a_root_master() -> None:
    assert nginx_conf.user_directive("nobody:nogroup", "root") == "user nobody nogroup;\n"
    assert nginx_conf.user_directive("www-data", "0") == "user www-data;\n"
    assert nginx_conf.user_directive("www-data", "app") == ""
    assert nginx_conf.user_directive(None, "root") == ""


def test_log_tail_drops_notices_and_buildahs_exit_lines() -> None:
    text = (
        "2026/01/01 [notice] 1#1: start worker processes\n"
        'nginx: [emerg] unknown directive "x"\n'
        "\n"
        "subprocess exited with status 1\n"
        "Error: exit status 1\n"
        "2026/01/01 [info] 1#1: y\n"
        "\tstack traceback:\n"
    )
    assert nginx_conf.log_tail(text) == [
        'nginx: [emerg] unknown directive "x"',
        "\tstack traceback:",
    ]
    assert nginx_conf.log_tail("\n".join(f"[error] {i}" for i in range(30)), 2) == [
        "[error] 28",
        "[error] 29",
    ]


def test_first_error_is_shortened_to_what_follows_the_level() -> None:
    line = "2026/01/01 00:00:00 [error] 9#9: *1 lua entry thread aborted: boom, client: x"
    assert nginx_conf.first_error(f"[notice] 9#9: hi\n{line}") == (
        "[error] lua entry thread aborted: boom, client: x"
    )
    assert nginx_conf.first_error("nginx: [emerg] still could not bind()") == (
        "[emerg] still could not bind()"
    )
    assert nginx_conf.first_error("[notice] fine") is None


def test_bind_failed_is_about_this_port_only() -> None:
    text = "nginx: [emerg] bind() to 127.0.0.1:4711 failed (98: Address already in use)"
    assert nginx_conf.bind_failed(text, 4711)
    assert not nginx_conf.bind_failed(text, 4712)
    assert not nginx_conf.bind_failed(
        "bind() to 127.0.0.1:4711 failed (13: Permission denied)", 4711
    )
