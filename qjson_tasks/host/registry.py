"""How buildah reaches a registry (TLS, credentials, signature configuration), and
their failures as one sentence each.

Credentials are only ever named by their file (`--authfile`, or buildah's default auth file
when none is given); no password goes into an argv, so none can reach an error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qjson_tasks.errors import RegistryError, ToolError

# What buildah (containers/image) prints, from the specific to the general.
_UNREACHABLE = re.compile(
    r"connection refused|no such host|i/o timeout|network is unreachable|no route to host"
    r"|connection reset by peer|server misbehaving"
)
_DENIED = re.compile(
    r"(?:unauthorized|authentication required|invalid username/password|denied: |403 Forbidden)"
    r"[^\n\"]*",
    re.IGNORECASE,
)
_PLAIN_HTTP = "server gave HTTP response to HTTPS client"
_CERTIFICATE = re.compile(r"x509: [^\n\"]+")
_LAST_ERROR = re.compile(r"(?:^|\n)Error: ([^\n]+)")


@dataclass(frozen=True)
class RemoteAccess:
    """What a push or pull needs to reach a registry.

    tls_verify False passes `--tls-verify=false`; True passes nothing, so buildah's own rule
    holds (TLS verified unless registries.conf marks the registry insecure). registries_d is
    the registries.d directory that says where signatures are written and read (buildah
    1.28's global `--registries-conf-dir`, which is that, despite its help text); policy a
    containers-policy.json that a pull must satisfy.
    """

    tls_verify: bool = True
    authfile: str | None = None
    registries_d: str | None = None
    policy: str | None = None

    def buildah_globals(self) -> list[str]:
        return ["--registries-conf-dir", self.registries_d] if self.registries_d else []

    def buildah_args(self) -> list[str]:
        """The flags `buildah push` and `buildah pull` share."""
        args = [] if self.tls_verify else ["--tls-verify=false"]
        return args + (["--authfile", self.authfile] if self.authfile else [])

    @property
    def credentials(self) -> str:
        return f"--authfile {self.authfile}" if self.authfile else "buildah's default auth file"


def unreachable(exc: ToolError) -> bool:
    """Whether a failure says the registry could not be talked to at all (network, TLS,
    plain HTTP), rather than answering no."""
    output = exc.output or str(exc)
    return bool(_UNREACHABLE.search(output) or _CERTIFICATE.search(output) or _PLAIN_HTTP in output)


def last_error(exc: ToolError) -> str:
    """The last `Error: ...` line of a failed command, else the error's own first line."""
    found = _LAST_ERROR.findall(exc.output or "")
    return found[-1].strip() if found else str(exc).splitlines()[0]


def registry_failure(
    exc: ToolError, registry: str, doing: str, access: RemoteAccess, untouched: str = ""
) -> RegistryError:
    """A failed push, pull or lookup as one line: `<doing> failed: <why>`. untouched (e.g.
    "nothing was pushed") is added when the failure came before anything was sent."""
    output = exc.output or str(exc)
    before_sending = True
    if _PLAIN_HTTP in output:
        message = (
            f"registry {registry} answers plain HTTP, not HTTPS: pass --no-tls-verify, but"
            " only for a registry you trust on this machine or network"
        )
    elif certificate := _CERTIFICATE.search(output):
        message = f"registry {registry}'s TLS certificate was refused ({certificate.group(0)})"
    elif unreachable := _UNREACHABLE.search(output):
        message = f"registry {registry} is unreachable ({unreachable.group(0)})"
    elif denied := _DENIED.search(output):
        message = (
            f"registry {registry} refused the credentials from {access.credentials}"
            f" ({denied.group(0)}): log in with `buildah login {registry}` or pass --authfile"
        )
    elif "manifest unknown" in output:
        message = "the registry has no such image (manifest unknown)"
    else:
        message, before_sending = last_error(exc), False
    if untouched and before_sending:
        message += f"; {untouched}"
    return RegistryError(f"{doing} failed: {message}")
