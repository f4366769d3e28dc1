"""A server's processes read from a fake /proc, and the loopback helpers.

The fake pids are above the kernel's limit (2**22): a kill gone wrong can't reach a real
process.
"""

from __future__ import annotations

import socket
from pathlib import Path

from qjson_tasks.host import loopback, processes


def stat_line(pid: int, parent: int, started: int, state: str = "S") -> str:
    # 52 fields as the kernel writes them; a comm holding a space and a ')' checks the parsing.
    rest = ["0"] * 49
    rest[17] = str(started)  # field 22
    return f"{pid} (ng x) y) {state} {parent} " + " ".join(rest) + "\n"


def fake_proc(tmp_path: Path, table: dict[int, tuple[int, int, str, str]]) -> Path:
    """pid -> (parent, start time, state, command line)."""
    proc = tmp_path / "proc"
    for pid, (parent, started, state, cmdline) in table.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "stat").write_text(stat_line(pid, parent, started, state))
        (proc / str(pid) / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")
    (proc / "self").mkdir()  # not a pid: skipped
    return proc


MASTER = "nginx: master process /usr/sbin/nginx -c /tmp/qjt-gateway/nginx.conf"


def test_a_servers_family_is_its_master_and_the_masters_children(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        {
            4999910: (1, 500, "S", MASTER),
            4999911: (4999910, 510, "S", "nginx: worker process"),
            4999912: (4999910, 511, "S", "nginx: cache manager process"),
            4999913: (1, 512, "S", "nginx: worker process"),  # someone else's
        },
    )
    family = processes.family(4999910, "/tmp/qjt-gateway/nginx.conf", proc)
    assert [(p.pid, p.parent, p.started) for p in family] == [
        (4999910, 1, 500),
        (4999911, 4999910, 510),
        (4999912, 4999910, 511),
    ]
    assert all(processes.running(p, proc) for p in family)


def test_a_pid_that_is_not_the_servers_has_no_family(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path, {4999910: (1, 500, "S", "bash"), 4999911: (4999910, 510, "S", "sleep 9")}
    )
    assert processes.family(4999910, "/tmp/qjt-gateway/nginx.conf", proc) == []
    assert processes.family(4999999, "/tmp/qjt-gateway/nginx.conf", proc) == []


def test_a_reused_pid_or_a_zombie_is_not_running(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {4999910: (1, 500, "S", MASTER), 4999911: (1, 600, "Z", "")})
    [master] = processes.family(4999910, "nginx.conf", proc)
    (proc / "4999910" / "stat").write_text(stat_line(4999910, 1, 777))  # pid reused
    assert not processes.running(master, proc)
    zombie = processes.read(4999911, proc)
    assert zombie is not None and not processes.running(zombie, proc)
    processes.kill(master, proc)  # not ours any more: nothing is signalled


def test_a_free_port_is_free_and_on_loopback() -> None:
    port = loopback.free_port()
    assert 0 < port < 65536
    assert not loopback.is_listening(port)
    with socket.socket() as sock:
        sock.bind((loopback.LOOPBACK, port))
        sock.listen(1)
        assert loopback.is_listening(port)
