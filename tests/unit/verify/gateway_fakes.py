"""A fake nginx for the gateway check's unit tests: a Background that really answers HTTP on
127.0.0.1 and the port of the nginx.conf the check wrote, and a recording runner that starts
it, stops it on `nginx -s quit` and answers the readability probe."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from qjson_tasks.errors import ToolError
from tests.unit.fakes import FakeRunner, is_call, runs

ANSWER = "model=gpt-4o n=42"
LUA_ERROR = (
    "2026/01/01 00:00:00 [error] 7#7: *1 lua entry thread aborted: runtime error: qjson: failed"
    " to load native library qjson; tried qjson, libqjson; last error: No such file or directory"
)


class FakeNginx:
    """A Background standing for `buildah run ... nginx`: what it does is its mode."""

    def __init__(self, argv: Sequence[str], mode: str, run_dir: Path, answer: tuple[int, str]):
        self.argv, self.mode, self.run_dir, self.answer = list(argv), mode, run_dir, answer
        self.ended = threading.Event()
        self.code: int | None = None
        self.out = ""
        self.killed = False
        self.server: ThreadingHTTPServer | None = None
        self.port = int(re.findall(r"listen 127\.0\.0\.1:(\d+);", self.conf())[0])

    def conf(self) -> str:
        return (self.run_dir / "nginx.conf").read_text()

    def begin(self) -> None:
        if self.mode == "exit":
            self.log('[emerg] 7#7: unknown directive "content_by_lua_block" in nginx.conf:9')
            self.end(1, 'nginx: [emerg] unknown directive "content_by_lua_block"\n')
        elif self.mode == "bind-fail":
            failed = f"bind() to 127.0.0.1:{self.port} failed (98: Address already in use)"
            self.end(1, f"nginx: [emerg] {failed}\nnginx: [emerg] still could not bind()\n")
        elif self.mode in ("serve", "stuck"):
            self.serve()

    def serve(self) -> None:
        status, body = self.answer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()
        if status != 200:
            self.log(LUA_ERROR)
        (self.run_dir / "nginx.pid").write_text("4000000000\n")  # no such process

    def log(self, line: str) -> None:
        with (self.run_dir / "error.log").open("a") as stream:
            stream.write(line + "\n")

    def end(self, code: int, out: str = "") -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.code, self.out = code, self.out + out
        (self.run_dir / "nginx.pid").unlink(missing_ok=True)
        self.ended.set()

    def quit(self) -> None:
        if self.mode != "stuck":
            self.end(0)

    # --- Background ---
    def wait(self, timeout: float) -> int | None:
        return self.code if self.ended.wait(timeout) else None

    def output(self) -> str:
        return self.out

    def kill(self) -> None:
        self.killed = True
        self.end(-15)


@dataclass
class GatewayRunner(FakeRunner):
    modes: list[str] = field(default_factory=lambda: ["serve"])  # per start; the last repeats
    answer: tuple[int, str] = (200, ANSWER + "\n")
    probe: str = ""  # what the readability probe prints
    servers: list[FakeNginx] = field(default_factory=list)

    def start(self, argv: Sequence[str]) -> FakeNginx:
        self.calls.append(list(argv))
        mode = self.modes[min(len(self.servers), len(self.modes) - 1)]
        nginx = FakeNginx(argv, mode, self.mount_root / "tmp" / "qjt-gateway", self.answer)
        self.servers.append(nginx)
        nginx.begin()
        return nginx

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        stream: bool = False,
        cwd: Path | None = None,
    ) -> str:
        out = super().run(argv, input=input, env=env, stream=stream, cwd=cwd)
        if is_call("-s", "quit")(list(argv)) and self.servers:
            if not (self.mount_root / "tmp/qjt-gateway/nginx.pid").exists():
                raise ToolError("command failed (exit 1): nginx -s quit", output="open() failed")
            self.servers[-1].quit()
        if runs("sh")(list(argv)):
            return self.probe
        return out
