"""Finding, downloading and caching checkpoints and data files.

Weight metadata is data (:class:`RemoteFile`), not code. :func:`resolve` looks, in order, in

1. the directories given by ``--checkpoint-dir`` / :func:`set_checkpoint_dirs` and the
   ``OPENVOCAB_CHECKPOINT_DIR`` environment variable (``os.pathsep``-separated);
2. openvocab's own cache (``OPENVOCAB_CACHE``, default ``~/.cache/openvocab``): files downloaded
   from plain URLs and files put there by :func:`copy_into_cache`;
3. the Hugging Face cache (``hf_hub_download``; honours ``HF_HUB_OFFLINE``) for files on the hub,

and downloads into the cache when allowed. :func:`resolve_repo` does the same for a whole Hugging Face
model repository (config, weights and processor files of a ``transformers`` model). Where a ``sha256``
is published, a file is accepted only if the sha256 of its *content* matches (never a cache file's name
or a server's ETag), hashed once per file version (:class:`~openvocab.fileio.HashMemo`); wrong files
in the caches are removed. Downloads and copies into the cache are atomic (temp file + fsync + rename).
If the file cannot be had, :class:`MissingFileError` says which file, where it comes from and how to point
at a local copy.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from .fileio import HashMemo, atomic_open, sha256sum  # noqa: F401  (sha256sum: re-exported)

ENV_CHECKPOINT_DIR = "OPENVOCAB_CHECKPOINT_DIR"
ENV_CACHE = "OPENVOCAB_CACHE"

_checkpoint_dirs: list[Path] = []


class MissingFileError(RuntimeError):
    """A checkpoint or data file is not available locally and could not be downloaded."""


@dataclass(frozen=True)
class RemoteFile:
    """Where a checkpoint/data file comes from.

    Attributes:
        filename: the file's name on disk (looked up in checkpoint dirs under this name).
        hf_repo: Hugging Face repo id, if the file lives on the hub.
        hf_filename: path inside the repo (defaults to ``filename``).
        url: plain URL, if not on the hub (or as a fallback).
        sha256: expected hex digest, checked after download (``None`` = not published).
        description: what the file is, for messages.
    """

    filename: str
    hf_repo: Optional[str] = None
    hf_filename: Optional[str] = None
    url: Optional[str] = None
    sha256: Optional[str] = None
    description: str = ""

    @property
    def urls(self) -> list[str]:
        """Direct download URLs, in the order they are tried (the Hugging Face hub's, honouring
        ``HF_ENDPOINT``, then ``url``)."""
        out = []
        if self.hf_repo:
            endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
            out.append(f"{endpoint}/{self.hf_repo}/resolve/main/{self.hf_filename or self.filename}")
        if self.url:
            out.append(self.url)
        return out

    @property
    def source(self) -> str:
        if self.hf_repo:
            return f"https://huggingface.co/{self.hf_repo}/blob/main/{self.hf_filename or self.filename}"
        return self.url or "(no download location known)"


def set_checkpoint_dirs(dirs: Sequence[os.PathLike | str]) -> None:
    """Directories searched first for checkpoints (the CLI's ``--checkpoint-dir``)."""
    _checkpoint_dirs[:] = [Path(d).expanduser() for d in dirs]


def checkpoint_dirs() -> list[Path]:
    env = [Path(p).expanduser() for p in os.environ.get(ENV_CHECKPOINT_DIR, "").split(os.pathsep) if p]
    return list(_checkpoint_dirs) + env


def cache_dir() -> Path:
    return Path(os.environ.get(ENV_CACHE, "~/.cache/openvocab")).expanduser()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _memo() -> HashMemo:
    """Digests already verified (so a multi-GB checkpoint is hashed once): ``CACHE/verified-sha256.json``."""
    return HashMemo(path=cache_dir() / "verified-sha256.json")


def _missing(spec: RemoteFile, reason: str) -> MissingFileError:
    what = f" ({spec.description})" if spec.description else ""
    return MissingFileError(
        f"Missing file '{spec.filename}'{what}: {reason}.\n"
        f"  It is downloaded from {spec.source} on first use.\n"
        f"  To use a local copy, put it in a folder and pass --checkpoint-dir FOLDER "
        f"or set {ENV_CHECKPOINT_DIR}=FOLDER (searched: "
        f"{', '.join(map(str, checkpoint_dirs())) or 'none given'}).")


def _mismatch(spec: RemoteFile, path: Path) -> Optional[str]:
    """The sha256 of ``path``'s content if it is not the published one (``None``: it is, or none is
    published). Hashes the content (once: see :func:`_memo`), never trusts a file name."""
    if not spec.sha256:
        return None
    got = _memo().sha256(path)
    return None if got == spec.sha256.lower() else got


def _remove(*paths: Path) -> None:
    for p in paths:
        if os.path.lexists(p):
            os.unlink(p)


def _download_url(spec: RemoteFile, dest: Path) -> None:
    """Download ``spec.url`` to ``dest`` (temp file + fsync + rename), hashing the bytes as they come;
    a short or wrong file never reaches ``dest``."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    size = 0
    with atomic_open(dest) as out, urllib.request.urlopen(spec.url, timeout=60) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename) as bar:
            while block := resp.read(1 << 20):
                out.write(block)
                digest.update(block)
                size += len(block)
                bar.update(len(block))
        if total is not None and size != total:
            raise MissingFileError(f"Download of '{spec.filename}' from {spec.url} stopped after {size} of "
                                   f"{total} bytes; the partial file was discarded.")
        if spec.sha256 and digest.hexdigest() != spec.sha256.lower():
            raise MissingFileError(f"Downloaded '{spec.filename}' from {spec.url} has sha256 "
                                   f"{digest.hexdigest()}, expected {spec.sha256}; the file was discarded.")
    _memo().remember(dest, digest.hexdigest())


def _check_hf_file(spec: RemoteFile, path: Path) -> Path:
    """A file from the Hugging Face cache against the published ``sha256``, hashed from its content
    (the cache names a blob after the server's ETag, which proves nothing). A wrong file is removed
    from the cache (blob and snapshot link), so the next run downloads it again."""
    got = _mismatch(spec, path)
    if got is None:
        return path
    blob = Path(os.path.realpath(path))
    _remove(path, blob)
    _memo().forget(blob)
    raise MissingFileError(
        f"'{spec.filename}' from {spec.source} has sha256 {got}, expected {spec.sha256}: refused, and removed "
        f"from the Hugging Face cache ({path}); the next run downloads it again, or put the published file in a "
        "--checkpoint-dir folder")


_recorders: list[list[tuple[Optional[RemoteFile], Path]]] = []


@contextlib.contextmanager
def recording() -> Iterator[list[tuple[Optional[RemoteFile], Path]]]:
    """Collects ``(spec or None, path)`` of every file :func:`resolve` hands out inside the block (a job
    fingerprints the model files its pipeline loaded)."""
    found: list[tuple[Optional[RemoteFile], Path]] = []
    _recorders.append(found)
    try:
        yield found
    finally:
        _recorders.remove(found)


def resolve(spec: RemoteFile | str, *, download: bool = True) -> Path:
    """Local path of ``spec``; downloads into the cache if needed and allowed.

    Where ``spec.sha256`` is published, every file found or fetched is checked against it by hashing
    its content (once per file version: :func:`_memo`). A wrong file in a ``--checkpoint-dir`` is
    refused (and left alone: it is the user's); a wrong file in openvocab's cache or the Hugging Face
    cache is removed. ``spec`` may also be a plain path string to an existing file (not checked).
    """
    path = _resolve(spec, download=download)
    for found in _recorders:
        found.append((spec if isinstance(spec, RemoteFile) else None, path))
    return path


def _resolve(spec: RemoteFile | str, *, download: bool = True) -> Path:
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec).expanduser()
        if path.is_file():
            return path
        for d in checkpoint_dirs():
            if (d / path.name).is_file():
                return d / path.name
        raise MissingFileError(f"Missing file '{spec}': no such file (searched also "
                               f"{', '.join(map(str, checkpoint_dirs())) or 'no --checkpoint-dir'}).")
    for d in checkpoint_dirs():
        local = d / spec.filename
        if local.is_file():
            got = _mismatch(spec, local)
            if got is not None:
                raise MissingFileError(
                    f"'{local}' has sha256 {got}, but the published '{spec.filename}' ({spec.source}) has "
                    f"{spec.sha256}: it is another or a damaged file; replace it (or remove it to download)")
            return local
    cached = cache_dir() / spec.filename
    removed = ""
    if cached.is_file():
        got = _mismatch(spec, cached)
        if got is None:
            return cached
        _remove(cached)
        removed = f"the cached copy {cached} had sha256 {got}, expected {spec.sha256}, and was removed; "
    if spec.hf_repo:
        try:
            from huggingface_hub import hf_hub_download

            hf_path = Path(hf_hub_download(spec.hf_repo, spec.hf_filename or spec.filename,
                                           local_files_only=offline() or not download))
        except Exception as e:  # offline, no network, 404...: fall through to the URL or fail
            hf_error = f"not in the Hugging Face cache and could not be downloaded ({type(e).__name__})"
        else:
            return _check_hf_file(spec, hf_path)
        if not spec.url:
            raise _missing(spec, removed + hf_error) from None
    if not spec.url:
        raise _missing(spec, removed + "no download location is known")
    if offline() or not download:
        raise _missing(spec, removed + "not cached and downloads are off (HF_HUB_OFFLINE)")
    try:
        _download_url(spec, cached)
    except MissingFileError:
        raise
    except Exception as e:
        raise _missing(spec, f"{removed}download failed ({type(e).__name__}: {e})") from None
    return cached


def copy_into_cache(path: os.PathLike | str, spec: RemoteFile) -> Path:
    """Put a local file where :func:`resolve` will find it (for offline set-up).

    The copy is atomic (temp file in the cache folder + fsync + rename) and is hashed as it is
    copied: a file that is not the published one (``spec.sha256``) is refused and nothing is left.
    """
    dest = cache_dir() / spec.filename
    digest = hashlib.sha256()
    with open(path, "rb") as src, atomic_open(dest) as out:
        while block := src.read(1 << 20):
            out.write(block)
            digest.update(block)
        if spec.sha256 and digest.hexdigest() != spec.sha256.lower():
            raise MissingFileError(f"'{path}' has sha256 {digest.hexdigest()}, but the published "
                                   f"'{spec.filename}' ({spec.source}) has {spec.sha256}: not copied")
    _memo().remember(dest, digest.hexdigest())
    return dest


@dataclass(frozen=True)
class RemoteRepo:
    """A whole Hugging Face model repository a stage loads (``config.json``, weights, processor files).

    Attributes:
        repo: the hub id (``org/name``); :func:`resolve_repo` looks for it as ``DIR/org/name`` in the
            checkpoint dirs, then in the Hugging Face cache.
        revision: a pinned hub revision (``None``: the default branch).
        description: what the model is, for messages.
    """

    repo: str
    revision: Optional[str] = None
    description: str = ""

    @property
    def url(self) -> str:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        return f"{endpoint}/{self.repo}" + (f"/tree/{self.revision}" if self.revision else "")


#: files of a model repository that ``transformers`` reads (no TF/Flax/ONNX copies of the weights)
REPO_PATTERNS = ("*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken", "pytorch_model*.bin")
#: files of a model folder recorded for a job's fingerprint (weights and configuration)
_REPO_RECORDED = ("*.safetensors", "*.bin", "config.json")


def model_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def resolve_repo(repo: str, *, revision: Optional[str] = None, download: bool = True,
                 description: str = "") -> Path:
    """Local folder of a Hugging Face model repository (``config.json``, weights, processor files).

    ``repo`` is a hub id (``"IDEA-Research/grounding-dino-tiny"``) or a local folder. A hub id is looked for,
    in order, in the checkpoint directories and openvocab's cache (as ``DIR/org/name``, ``DIR/org--name`` or
    ``DIR/name``), then in the Hugging Face cache, and downloaded there when allowed (``HF_HUB_OFFLINE=1`` forbids it); if it cannot
    be had, :class:`MissingFileError` names the repository and how to point at a local copy.
    """
    path = Path(repo).expanduser()
    if model_folder(path):
        return _recorded_folder(path)
    if path.is_absolute() or repo.startswith(".") or repo.count("/") != 1:
        raise MissingFileError(f"Missing model folder '{repo}': no config.json there, and it is not a Hugging "
                               f"Face repository id (org/name).")
    org, name = repo.split("/")
    for d in [*checkpoint_dirs(), cache_dir()]:  # the cache: where `openvocab download` puts it without --to
        for cand in (d / org / name, d / f"{org}--{name}", d / name):
            if model_folder(cand):
                return _recorded_folder(cand)
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo, revision=revision, allow_patterns=list(REPO_PATTERNS),
                                        local_files_only=offline() or not download))
    except Exception as e:  # offline and not cached, no network, unknown repo...
        what = f" ({description})" if description else ""
        at = f" at revision {revision}" if revision else ""
        reason = ("not in the Hugging Face cache and downloads are off (HF_HUB_OFFLINE)" if offline() or not download
                  else f"not in the Hugging Face cache and could not be downloaded ({type(e).__name__})")
        raise MissingFileError(
            f"Missing model '{repo}'{what}{at}: {reason}.\n"
            f"  It is downloaded from https://huggingface.co/{repo} on first use.\n"
            f"  To use a local copy, download the repository (e.g. `hf download {repo} --local-dir "
            f"FOLDER/{org}/{name}`) and pass --checkpoint-dir FOLDER or set {ENV_CHECKPOINT_DIR}=FOLDER "
            f"(searched: {', '.join(map(str, checkpoint_dirs())) or 'none given'}), or give the folder itself "
            f"as the model.") from None
    if not model_folder(folder):
        raise MissingFileError(f"Hugging Face repository '{repo}' ({folder}) has no config.json: not a model.")
    return _recorded_folder(folder)


def _recorded_folder(folder: Path) -> Path:
    """``folder``, its weight and config files reported to every :func:`recording` block."""
    files = sorted({f for pattern in _REPO_RECORDED for f in folder.glob(pattern) if f.is_file()})
    for found in _recorders:
        found.extend((None, f) for f in files)
    return folder
