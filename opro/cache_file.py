"""One SQLite cache file (the LLM-call cache, the score cache) shared by threads and processes, with its faults
as a user should meet them.

A cache is a convenience, never the record (the run folder is): a file whose pages cannot be read as a
database is moved aside, with a one-line warning naming where it went, and the run goes on with an empty
cache. A cache that cannot be written (a full disk, an I/O error, a lock held past the busy timeout) is a
one-line OproError naming the file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from opro.errors import OproError, warn

T = TypeVar("T")
#: Files SQLite keeps beside a database in WAL mode; they move aside with it.
SIDE_FILES = ("-wal", "-shm")


def thread_connection(local: threading.local, path: Path) -> sqlite3.Connection:
    """This thread's connection to the SQLite file at `path` (made once per thread and kept in `local`).
    WAL and a long busy timeout let several processes and threads read and write the file at once."""
    db = getattr(local, "db", None)
    if db is None:
        db = sqlite3.connect(path, timeout=60.0)
        db.execute("PRAGMA busy_timeout = 60000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        local.db = db
    return db


class CacheFile:
    """The SQLite file at `path` holding `schema`, named `label` in messages ("LLM-call cache")."""

    def __init__(self, path: Path, label: str, schema: str, hint: str = "") -> None:
        self.path, self.label, self.schema, self.hint = path, label, schema, hint
        self._local = threading.local()  # one connection per thread, with the generation it was made in
        self._generation = 0  # raised when the file is moved aside: every thread reconnects
        self._lock = threading.Lock()
        self.run(lambda db: db.execute(schema))

    def connection(self) -> sqlite3.Connection:
        """This thread's connection to the current file."""
        if getattr(self._local, "db", None) is not None and self._local.generation != self._generation:
            self._close_local()
        if getattr(self._local, "db", None) is None:
            self._local.generation = self._generation
        return thread_connection(self._local, self.path)

    def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(connection)`; a damaged file is moved aside once and `work` runs again on an empty one."""
        for attempt in (0, 1):
            generation = self._generation
            try:
                return work(self.connection())
            except sqlite3.OperationalError as error:  # full disk, I/O error, a lock held too long
                raise OproError(f"cannot use the {self.label} {self.path}: {error}{self.hint}") from None
            except sqlite3.DatabaseError as error:  # damaged pages ("database disk image is malformed")
                if attempt:
                    raise OproError(f"cannot use the {self.label} {self.path}: {error}{self.hint}") from None
                self._move_aside(error, generation)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._close_local()

    def _close_local(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            try:
                db.close()
            finally:
                self._local.db = None

    def _move_aside(self, error: sqlite3.DatabaseError, generation: int) -> None:
        with self._lock:
            self._close_local()
            if generation != self._generation:  # another thread moved it aside already
                return
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            try:
                self.path.replace(aside)
                for suffix in SIDE_FILES:
                    side = self.path.with_name(self.path.name + suffix)
                    if side.exists():
                        side.replace(aside.with_name(aside.name + suffix))
            except OSError as failure:
                raise OproError(f"the {self.label} {self.path} is damaged ({error}) and cannot be moved aside: "
                                f"{failure.strerror or failure}") from None
            self._local.generation = self._generation + 1
            with thread_connection(self._local, self.path) as db:  # an empty file, its table made
                db.execute(self.schema)
            self._generation += 1
        warn(f"the {self.label} {self.path} is damaged ({error}); moved it to {aside} and went on with an empty "
             "cache")
