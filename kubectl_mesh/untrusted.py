"""Reading manifests from anywhere, in bounded time and memory.

`diagnose -f` takes files, directories and standard input that anyone may
have written. Each limit below is refused with one line naming the file
(exit 2), before the input can cost more than it:

- a file (or standard input) larger than MAX_FILE_BYTES, and more than
  MAX_TOTAL_BYTES in all;
- anything but a regular file: /dev/zero, fifos, sockets, devices (a fifo
  is opened without blocking, then refused);
- a symbolic link loop, a directory reached twice (a link back up the
  tree), the same file reached twice, more than MAX_FILES files or a tree
  deeper than MAX_WALK_DEPTH;
- YAML or JSON nested deeper than MAX_NESTING;
- YAML aliases expanding to more than MAX_ALIAS_NODES nodes beyond the
  document's own (a 476-byte "billion laughs" file expanded to a million
  objects), or an alias to its own ancestor.

YAML is read with PyYAML's safe loader; the limits are enforced on top of
it by a first pass over the parser's events (libyaml's, iterative), before
any node is composed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import mmap
import os
import stat
import sys
from pathlib import Path

from kubectl_mesh.errors import UsageError

MAX_FILE_BYTES = 1 << 30  # 1 GiB: a whole 10,000-pod cluster's `kubectl get -A -o json` is ~250 MB
MAX_TOTAL_BYTES = 1 << 30
MAX_FILES = 10_000
MAX_WALK_DEPTH = 32
MAX_NESTING = 100
MAX_ALIAS_NODES = 100_000

LIMITS_HELP = (f"Limits: files of at most {MAX_FILE_BYTES >> 20} MiB ({MAX_TOTAL_BYTES >> 20} MiB in all), "
               f"regular files only, {MAX_FILES} files, directories {MAX_WALK_DEPTH} deep, each reached once; "
               f"documents nested at most {MAX_NESTING} deep; YAML aliases adding at most {MAX_ALIAS_NODES:,} "
               "nodes. Beyond them the input is refused with exit 2.")
# From this size on a file is decoded from a memory map (see read_file).
MAP_FROM_BYTES = 1 << 20
_KINDS = {stat.S_IFIFO: "a fifo", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


class Budget:
    """What one run has read so far, against the limits."""

    def __init__(self) -> None:
        self.total = 0
        self.files = 0
        self.seen: dict[tuple[int, int], str] = {}

    def take(self, source: str, size: int) -> None:
        if size > MAX_FILE_BYTES:
            raise UsageError(f"{source}: {size >> 20} MiB, more than the {MAX_FILE_BYTES >> 20} MiB a manifest "
                             "file may have")
        self.total += size
        if self.total > MAX_TOTAL_BYTES:
            raise UsageError(f"{source}: the manifests exceed {MAX_TOTAL_BYTES >> 20} MiB in all")

    def once(self, source: str, info: os.stat_result, what: str) -> None:
        key = (info.st_dev, info.st_ino)
        if key in self.seen:
            raise UsageError(f"{source}: {what} reached twice (the same as {self.seen[key]}); "
                             "is a symbolic link pointing back into the tree?")
        self.seen[key] = source


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path}: a symbolic link loop") from None
        if exc.errno == errno.ENOENT:
            raise UsageError(f"{path}: no such file or directory") from None
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _not_regular(path: str, info: os.stat_result) -> UsageError:
    kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
    return UsageError(f"{path}: {kind}, not a regular file: give manifest files, directories or -")


def open_file(path: str, budget: Budget):
    """The file opened for reading in binary, within the limits.

    Opened without blocking (a fifo swapped in after the check cannot hang the
    read) and checked on the open file: a regular file, reached once, within the
    size limits."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path}: a symbolic link loop") from None
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    stream = os.fdopen(fd, "rb")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info)
        budget.once(path, info, "file")
        budget.take(path, info.st_size)
    except BaseException:
        stream.close()
        raise
    return stream


def read_open(stream, path: str) -> str:
    """The text of a file from open_file, as Path.read_text(encoding="utf-8") gives it.

    A large file (a whole cluster's `kubectl get -o json`) is decoded straight from
    a memory map, not from a copy of its bytes read first: filling that copy costs
    a page fault every 4 KiB. Read no further than the limit: a file growing while
    it is read is still bounded."""
    try:
        if os.fstat(stream.fileno()).st_size >= MAP_FROM_BYTES:
            try:
                mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                mapped = None  # cannot be mapped: read as any other file
            if mapped is not None:
                with mapped:
                    if len(mapped) > MAX_FILE_BYTES:
                        raise UsageError(f"{path}: more than the {MAX_FILE_BYTES >> 20} MiB a manifest "
                                         "file may have")
                    text = str(mapped, "utf-8")
                return _newlines(text)
        data = stream.read(MAX_FILE_BYTES + 1)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (UTF-8 expected)") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"{path}: more than the {MAX_FILE_BYTES >> 20} MiB a manifest file may have")
    return _decode(data, path)


def read_file(path: str, budget: Budget) -> str:
    """The file's text, within the limits (open_file, then read_open)."""
    with open_file(path, budget) as stream:
        return read_open(stream, path)


def read_stream(stream, source: str, budget: Budget) -> str:
    """Standard input, read in chunks no further than the limit; a device (stdin from
    /dev/zero) is refused, and so is a NUL byte, which no text manifest has."""
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        info = None  # not a real file (tests give a StringIO)
    if info is not None and (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)) and not stream.isatty():
        raise _not_regular(source, info)
    raw = getattr(stream, "buffer", stream)
    chunks, size = [], 0
    while True:
        chunk = raw.read(1 << 20)
        if not chunk:
            break
        if (b"\0" if isinstance(chunk, bytes) else "\0") in chunk:
            raise UsageError(f"{source}: not a text file (a NUL byte)")
        size += len(chunk)
        budget.take(source, size)
        chunks.append(chunk)
    data = (b"" if not chunks or isinstance(chunks[0], bytes) else "").join(chunks)
    return _decode(data, source) if isinstance(data, bytes) else _newlines(data)


def _decode(data: bytes, source: str) -> str:
    try:
        return _newlines(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not a text file (UTF-8 expected)") from None


def _newlines(text: str) -> str:
    if "\r" in text:  # the newlines that text-mode reading translates
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def expand(path: str, budget: Budget, extensions: tuple[str, ...]) -> list[str]:
    """The manifest files a path names: itself, or those under it, sorted."""
    info = _stat(path)
    if not stat.S_ISDIR(info.st_mode):
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info)
        return [path]
    found: list[str] = []
    _walk(Path(path), found, budget, extensions, 0, info)
    if not found:
        raise UsageError(f"{path}: no manifests ({', '.join(extensions)}) in this directory")
    return found


def _walk(directory: Path, found: list[str], budget: Budget, extensions, depth: int, info) -> None:
    """Entries in lexical order, directories descended where they sort (as kubectl's
    filepath.Walk does); each directory once, within the depth and file limits."""
    if depth > MAX_WALK_DEPTH:
        raise UsageError(f"{directory}: more than {MAX_WALK_DEPTH} directories deep")
    budget.once(str(directory), info, "directory")
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot read: {exc.strerror or exc}") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        entry_info = _stat(entry.path)
        if stat.S_ISDIR(entry_info.st_mode):
            _walk(Path(entry.path), found, budget, extensions, depth + 1, entry_info)
        elif entry.name.lower().endswith(extensions):
            if not stat.S_ISREG(entry_info.st_mode):
                raise _not_regular(entry.path, entry_info)
            found.append(entry.path)
            if len(found) + budget.files > MAX_FILES:
                raise UsageError(f"{directory}: more than {MAX_FILES} manifest files")


# -- documents ---------------------------------------------------------------------------
@contextlib.contextmanager
def nesting_bound():
    """Decoding JSON nested no deeper than MAX_NESTING: the C decoders (json's and
    msgspec's) count each level against the recursion limit, set for the call to
    what is in use + the limit."""
    depth = _stack_depth()
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + MAX_NESTING + 20)
    try:
        yield
    except RecursionError:
        raise _too_deep() from None
    finally:
        sys.setrecursionlimit(previous)


def load_json(text: str):
    """json.loads, refusing nesting deeper than MAX_NESTING."""
    try:
        with nesting_bound():
            return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer of more digits than Python converts (4,300)
        raise UsageError(f"invalid JSON: {exc}".split(";")[0]) from None


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def _too_deep() -> UsageError:
    return UsageError(f"nested more than {MAX_NESTING} levels deep")


def check_yaml_events(loader, source: str) -> None:
    """One pass over the parser's events: nesting depth, and what aliases expand to
    (each anchor's size, counted as its collection closes; an alias to a collection
    still open is an alias to its own ancestor). Raises UsageError naming the line."""
    import yaml

    depth = 0
    sizes: dict[str, int] = {}
    open_anchors: list[str | None] = []
    counts: list[int] = []
    extra = 0
    while True:
        event = loader.get_event()
        if event is None or isinstance(event, yaml.StreamEndEvent):
            return
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise UsageError(f"{source}:{line}: YAML alias *{event.anchor} refers to its own ancestor")
            size = sizes.get(event.anchor, 1)
            extra += size
            if extra > MAX_ALIAS_NODES:
                raise UsageError(f"{source}:{line}: YAML aliases expand to more than {MAX_ALIAS_NODES:,} nodes "
                                 "(an alias bomb?)")
            if counts:
                counts[-1] += size
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            if counts:
                counts[-1] += 1
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise UsageError(f"{source}:{line}: {_too_deep().message}")
            open_anchors.append(event.anchor)
            counts.append(1)
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1
            anchor, size = open_anchors.pop(), counts.pop()
            if anchor:
                sizes[anchor] = size
            if counts:
                counts[-1] += size
