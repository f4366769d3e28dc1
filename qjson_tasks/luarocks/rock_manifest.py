"""Read luarocks' per-rock `rock_manifest` files and check the installed files."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, TypeAlias

from qjson_tasks.errors import VerificationError
from qjson_tasks.verify.rootfs import resolve_in_root

ManifestTree: TypeAlias = dict[str, "str | ManifestTree"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<string>"|')
    | (?P<punct>[{}\[\]=,;])
    """,
    re.VERBOSE,
)
_LUA_KEYWORDS = frozenset(
    [
        "and",
        "break",
        "do",
        "else",
        "elseif",
        "end",
        "false",
        "for",
        "function",
        "goto",
        "if",
        "in",
        "local",
        "nil",
        "not",
        "or",
        "repeat",
        "return",
        "then",
        "true",
        "until",
        "while",
    ]
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "\n": "\n"}


@dataclass(frozen=True)
class _Token:
    kind: Literal["name", "string", "punct", "end"]
    value: str
    line: int


def _error(source: str, line: int, message: str) -> VerificationError:
    return VerificationError(f"{source}: line {line}: {message}")


def _read_string(text: str, start: int, source: str, line: int) -> tuple[str, int]:
    """Read the quoted string opening at `start`; return its value and the end offset."""
    quote = text[start]
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == quote:
            return "".join(chars), pos + 1
        if char == "\n":
            break
        if char != "\\":
            chars.append(char)
            pos += 1
            continue
        escape = text[pos + 1 : pos + 2]
        if escape in _ESCAPES:
            chars.append(_ESCAPES[escape])
            pos += 2
        elif digits := re.match(r"\d{1,3}", text[pos + 1 : pos + 4]):
            code = int(digits.group())
            if code > 255:
                raise _error(source, line, f"bad escape \\{digits.group()} in a string")
            chars.append(chr(code))
            pos += 1 + len(digits.group())
        else:
            raise _error(source, line, f"unsupported escape \\{escape} in a string")
    raise _error(source, line, "unterminated string")


def _tokenize(text: str, source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(source, line, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup
        if kind == "string":
            value, end = _read_string(text, pos, source, line)
            tokens.append(_Token("string", value, line))
        else:
            end = match.end()
            if kind in ("name", "punct"):
                tokens.append(_Token(kind, match.group(), line))
        line += text.count("\n", pos, end)
        pos = end
    tokens.append(_Token("end", "", line))
    return tokens


class _Parser:
    """Recursive descent over `rock_manifest = { key = "md5" | {...}, ... }`."""

    def __init__(self, tokens: list[_Token], source: str) -> None:
        self._tokens = tokens
        self._pos = 0
        self._source = source

    def parse(self) -> ManifestTree:
        self._expect("name", "rock_manifest")
        self._expect("punct", "=")
        tree = self._table()
        self._expect("end", "")
        return tree

    def _peek(self) -> _Token:
        return self._tokens[self._pos]

    def _next(self) -> _Token:
        token = self._tokens[self._pos]
        if token.kind != "end":
            self._pos += 1
        return token

    def _fail(self, token: _Token, expected: str) -> VerificationError:
        return _error(self._source, token.line, f"expected {expected}, got {_describe(token)}")

    def _at(self, kind: str, *values: str) -> bool:
        token = self._peek()
        return token.kind == kind and token.value in values

    def _expect(self, kind: str, value: str) -> None:
        token = self._next()
        if token.kind != kind or token.value != value:
            wanted = "end of file" if kind == "end" else repr(value)
            raise self._fail(token, wanted)

    def _table(self) -> ManifestTree:
        self._expect("punct", "{")
        table: ManifestTree = {}
        while not self._at("punct", "}"):
            line = self._peek().line
            key = self._key()
            if key in table:
                raise _error(self._source, line, f"duplicate key {key!r}")
            self._expect("punct", "=")
            table[key] = self._value()
            if self._at("punct", ",", ";"):
                self._next()
            elif not self._at("punct", "}"):
                token = self._peek()
                raise self._fail(token, "',' or '}'")
        self._next()
        return table

    def _key(self) -> str:
        token = self._next()
        if token.kind == "punct" and token.value == "[":
            key = self._next()
            if key.kind != "string":
                raise self._fail(key, "a string key")
            self._expect("punct", "]")
        elif token.kind == "name" and token.value not in _LUA_KEYWORDS:
            key = token
        else:
            raise self._fail(token, "a key")
        # Keys are file names: anything that could leave its directory is malformed.
        if key.value in ("", ".", "..") or "/" in key.value or "\0" in key.value:
            raise _error(self._source, key.line, f"bad file name {key.value!r}")
        return key.value

    def _value(self) -> str | ManifestTree:
        token = self._peek()
        if token.kind == "string":
            return self._next().value
        if self._at("punct", "{"):
            return self._table()
        raise self._fail(token, "a string or a table")


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "end of file"
    return f"{token.kind} {token.value!r}"


def parse_rock_manifest(text: str, source: str) -> ManifestTree:
    """Parse a rock_manifest's text; `source` names the file in errors."""
    return _Parser(_tokenize(text, source), source).parse()


ProblemKind = Literal["missing", "not a file", "md5 mismatch"]


@dataclass(frozen=True)
class ManifestFile:
    """One file of a rock: `kind` is its top-level manifest dir ('' at the top)."""

    kind: str
    relative: str
    md5: str
    tree_path: PurePosixPath

    @property
    def entry(self) -> str:
        """The file's path as written in the manifest, e.g. `lua/qjson/lib.lua`."""
        return f"{self.kind}/{self.relative}" if self.kind else self.relative


@dataclass(frozen=True)
class InstalledRock:
    """A rock luarocks installed: its rock_manifest and the files it lists."""

    name: str
    version: str
    manifest_path: PurePosixPath
    files: tuple[ManifestFile, ...]

    @property
    def rock_dir(self) -> PurePosixPath:
        """The rock's own directory, `<tree>/lib/luarocks/rocks-<luaver>/<name>/<version>`."""
        return self.manifest_path.parent


@dataclass(frozen=True)
class FileProblem:
    """A rock's file that is missing or differs from its rock_manifest md5."""

    file: ManifestFile
    problem: ProblemKind
    expected_md5: str
    actual_md5: str | None = None

    @property
    def message(self) -> str:
        where = f"{self.file.tree_path} ({self.file.entry})"
        if self.problem == "md5 mismatch":
            return (
                f"{where}: md5 mismatch: rock_manifest says {self.expected_md5}, "
                f"the file has {self.actual_md5}"
            )
        return f"{where}: {self.problem}"


def rocks_dir(tree: PurePosixPath, lua_version: str) -> PurePosixPath:
    return tree / "lib" / "luarocks" / f"rocks-{lua_version}"


def deployed_path(
    kind: str, relative: str, tree: PurePosixPath, lua_version: str, rock_dir: PurePosixPath
) -> PurePosixPath:
    """Where luarocks 3 deploys a manifest entry."""
    if kind == "lua":
        return tree / "share" / "lua" / lua_version / relative
    if kind == "lib":
        return tree / "lib" / "lua" / lua_version / relative
    if kind == "bin":
        return tree / "bin" / relative
    # Everything else (rockspec, doc/, ...) stays in the rock's own directory.
    return rock_dir / kind / relative  # kind is '' for files at the manifest's top


def _flatten(tree: ManifestTree, prefix: str = "") -> list[tuple[str, str]]:
    files: list[tuple[str, str]] = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            files.extend(_flatten(value, f"{path}/"))
        else:
            files.append((path, value))
    return files


def manifest_files(
    tree: ManifestTree, install_tree: PurePosixPath, lua_version: str, rock_dir: PurePosixPath
) -> tuple[ManifestFile, ...]:
    """The files a parsed rock_manifest lists, with where luarocks deployed them."""
    files = []
    for entry, md5 in _flatten(tree):
        kind, _, relative = entry.partition("/") if "/" in entry else ("", "", entry)
        tree_path = deployed_path(kind, relative, install_tree, lua_version, rock_dir)
        files.append(ManifestFile(kind, relative, md5, tree_path))
    return tuple(files)


def _subdirs(root: Path, directory: PurePosixPath) -> list[str]:
    host = resolve_in_root(root, directory)
    if host is None or not host.is_dir():
        return []
    names = sorted(child.name for child in host.iterdir())
    return [name for name in names if _is_dir_in_root(root, directory / name)]


def _is_dir_in_root(root: Path, path: PurePosixPath) -> bool:
    host = resolve_in_root(root, path)
    return host is not None and host.is_dir()


def _read_text(host: Path, source: PurePosixPath) -> str:
    try:
        return host.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise VerificationError(f"{source}: not UTF-8 text: {error}") from error


def find_installed_rocks(root: Path, tree: PurePosixPath, lua_version: str) -> list[InstalledRock]:
    """Every rock installed in the in-image luarocks `tree` (e.g. /usr/local)."""
    base = rocks_dir(tree, lua_version)
    rocks = []
    for name in _subdirs(root, base):
        for version in _subdirs(root, base / name):
            manifest_path = base / name / version / "rock_manifest"
            host = resolve_in_root(root, manifest_path)
            if host is None or not host.is_file():
                continue
            parsed = parse_rock_manifest(_read_text(host, manifest_path), str(manifest_path))
            files = manifest_files(parsed, tree, lua_version, manifest_path.parent)
            rocks.append(InstalledRock(name, version, manifest_path, files))
    return rocks


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


def _md5_in_root(root: Path, path: PurePosixPath) -> str | None:
    host = resolve_in_root(root, path)
    return file_md5(host) if host is not None and host.is_file() else None


def check_file(root: Path, rock: InstalledRock, file: ManifestFile) -> FileProblem | None:
    """The problem with one of the rock's files, if any."""
    host = resolve_in_root(root, file.tree_path)
    if host is None:
        return FileProblem(file, "missing", file.md5)
    if not host.is_file():
        return FileProblem(file, "not a file", file.md5)
    actual = file_md5(host)
    if actual == file.md5:
        return None
    # luarocks replaces a Lua script in bin/ with a wrapper and keeps the original
    # in the rock's own bin/, so the original is what the manifest's md5 covers.
    if file.kind == "bin" and _md5_in_root(root, rock.rock_dir / "bin" / file.relative) == file.md5:
        return None
    return FileProblem(file, "md5 mismatch", file.md5, actual)


def check_files(root: Path, rock: InstalledRock) -> list[FileProblem]:
    """Missing files and md5 mismatches of an installed rock."""
    problems = (check_file(root, rock, file) for file in rock.files)
    return [problem for problem in problems if problem is not None]
