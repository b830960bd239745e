"""The user cache for downloaded and converted weights: where it is, hashing, atomic writes, download.

Every file enters the cache the same way: it is written under a temporary name in the cache folder,
checked, and only then renamed to its final name with ``os.replace`` (atomic on one file system).
So a download that is interrupted, or that fails its checksum, never leaves a half-written file
behind under a name that a later run would trust.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

from tqdm import tqdm

CHUNK = 1 << 20  # read and hash in 1 MiB pieces


def cache_dir(create: bool = True) -> Path:
    """The folder for downloaded weights.

    ``$TINYGRAD_CV_HOME`` if set, else ``$XDG_CACHE_HOME/tinygrad_cv``, else
    ``~/.cache/tinygrad_cv``. Read on every call (never at import), so tests can point it elsewhere.
    """
    if os.environ.get("TINYGRAD_CV_HOME"):
        path = Path(os.environ["TINYGRAD_CV_HOME"])
    elif os.environ.get("XDG_CACHE_HOME"):
        path = Path(os.environ["XDG_CACHE_HOME"]) / "tinygrad_cv"
    else:
        path = Path.home() / ".cache" / "tinygrad_cv"
    path = path.expanduser()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks (weights files are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(path: os.PathLike, sha256: str) -> bool:
    """True when the file exists and its SHA-256 starts with ``sha256`` (a full hash or a prefix)."""
    return Path(path).is_file() and sha256_file(path).startswith(sha256.lower())


def verify_sha256(path: os.PathLike, sha256: str, what: str = "") -> None:
    """Raise ValueError naming both hashes when the file's SHA-256 does not start with ``sha256``."""
    actual = sha256_file(path)
    if not actual.startswith(sha256.lower()):
        raise ValueError(f"checksum mismatch for {what or path}: expected sha256 {sha256}..., "
                         f"got {actual}")


@contextlib.contextmanager
def atomic_write(final_path: os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``final_path``; rename it into place only if the block succeeds.

    The temporary file is in the same folder so the final ``os.replace`` is a rename on one file
    system (atomic), never a copy. On any exception, including KeyboardInterrupt, it is deleted.
    """
    final_path = Path(final_path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final_path.name}.", suffix=".part",
                                    dir=final_path.parent)
    try:
        os.chmod(tmp_name, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp_name, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only way to read the umask is to set it, so set it straight back
    os.umask(mask)
    return mask


class DownloadError(RuntimeError):
    """A file could not be fetched (offline, unreachable, bad status, or wrong checksum)."""


def download(url: str, dest: os.PathLike, sha256: Optional[str] = None, hint: str = "",
             timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically, with a progress bar, checking the SHA-256 if given.

    Args:
        url: where to fetch from.
        dest: final path; nothing is written there unless the whole file arrived and matched.
        sha256: expected SHA-256, full or a prefix (torchvision file names carry an 8-digit prefix).
        hint: what to tell the user to do when the network is not there.
        timeout: seconds to wait for the server to answer.

    Raises:
        DownloadError: with one message that says what failed and what to do instead.
    """
    dest = Path(dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_write(dest) as out:
            digest = hashlib.sha256()
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if sha256 and not digest.hexdigest().startswith(sha256.lower()):
                raise DownloadError(f"{url}: checksum mismatch, expected sha256 {sha256}..., got "
                                    f"{digest.hexdigest()}; nothing was saved")
    except (urllib.error.URLError, OSError) as exc:  # offline, DNS failure, refused, timeout, HTTP
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"could not download {url} ({reason}). {hint}".strip()) from exc
    return dest
