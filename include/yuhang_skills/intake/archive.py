"""Archive: every file is copied into a content-addressed archive (sha256) before anything reads
it, and counts as received at a time the site's file and the pipeline's clock agree on."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from pathlib import Path


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def archive_copy(path: Path, archive_dir: Path, suffix: str) -> tuple[Path, str, int]:
    """Copy ``path`` into the content-addressed archive, hashing the bytes as they are copied:
    the archive, its name and everything parsed afterwards (from the archived copy) are the same
    bytes even when the site's file is rewritten meanwhile. Returns (archived path, sha256, size).
    The archive is readable by the service's user only; an existing copy is never rewritten."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=archive_dir, prefix=".incoming-", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(path, "rb", buffering=0) as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
        sha = h.hexdigest()
        target = archive_dir / sha[:2] / f"{sha}{suffix.lower()}"
        if target.exists():
            tmp.unlink()
        else:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp.chmod(0o400)
            tmp.replace(target)
        return target, sha, size
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def received_time(mtime: dt.datetime | None, seen: dt.datetime, as_of: dt.date) -> dt.datetime:
    """When a file counts as received (Asia/Shanghai wall time): its modification time is evidence of
    when the site sent it, but never later than when the pipeline saw it (a time in the future is a
    wrong clock). A run whose as-of day has not begun yet by the wall clock (a replay of a simulated
    calendar, like the demo) has no present to compare with: the file's time stands."""
    if mtime is None:
        return seen
    if seen < dt.datetime.combine(as_of, dt.time()):
        return mtime
    return min(mtime, seen)
