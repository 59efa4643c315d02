"""``openvocab download``: every file a pipeline config needs, into one folder, for machines without network.

On a connected machine::

    openvocab download --config full_pipeline --to /media/usb/checkpoints

fetches each file the config's stages will resolve (:meth:`openvocab.stages.Stage.remote_files`) into the
folder under the name :func:`openvocab.hub.resolve` looks for, and each whole Hugging Face model repository
(:meth:`openvocab.stages.Stage.remote_repos`: the ``transformers`` backends) as ``org/name``, checks its sha256 where one is published,
and writes ``manifest.json`` (file, URLs, size, sha256, what it is) and ``SHA256SUMS`` (``sha256sum -c``).
On the offline machine, ``--checkpoint-dir /media/usb/checkpoints`` then finds every file. A file already in
the folder (or in a local cache) is not downloaded again. Without ``--to``, files go to openvocab's cache
(``$OPENVOCAB_CACHE``, default ``~/.cache/openvocab``), where every later run finds them.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from functools import partial
import urllib.request
from pathlib import Path
from typing import Optional, Sequence

from . import __version__, hub
from .hub import MissingFileError, RemoteFile, RemoteRepo
from .writers.base import atomic_open, atomic_write_json, atomic_write_text

MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"


def _fetch(url: str, dest: Path, *, label: str, progress: bool) -> None:
    """Download ``url`` to ``dest`` atomically, with a progress bar."""
    from tqdm import tqdm

    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"openvocab/{__version__}"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label, disable=not progress,
                      dynamic_ncols=True) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _local_copy(spec: RemoteFile, dest: Path) -> Optional[Path]:
    """A copy of ``spec`` already on this machine (checkpoint folders, caches), other than ``dest``."""
    try:
        path = hub.resolve(spec, download=False)
    except MissingFileError:
        return None
    return None if path.resolve() == dest.resolve() else path


def _repo_entries(spec: RemoteRepo, folder: Path, dest: Path) -> list[dict]:
    return [{"file": p.relative_to(dest).as_posix(), "urls": [spec.url], "bytes": p.stat().st_size,
             "sha256": hub.sha256sum(p), "sha256_published": False, "description": spec.description}
            for p in sorted(folder.rglob("*")) if p.is_file() and ".cache" not in p.relative_to(folder).parts]


def download_repo(spec: RemoteRepo, dest: Path, *, label: str, progress: bool) -> list[dict]:
    """A whole model repository into ``dest/org/name`` (where ``--checkpoint-dir dest`` finds it): copied from
    the Hugging Face cache when it is there, else downloaded (``huggingface_hub.snapshot_download``, only the
    files :data:`openvocab.hub.REPO_PATTERNS` names). Returns its manifest entries."""
    from huggingface_hub import snapshot_download
    from tqdm.auto import tqdm

    folder = dest / spec.repo
    if hub.model_folder(folder):
        how = "already there"
    else:
        try:  # a copy in the Hugging Face cache
            cached = Path(snapshot_download(spec.repo, revision=spec.revision, allow_patterns=list(hub.REPO_PATTERNS),
                                            local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached (huggingface_hub raises several types)
            cached = None
        if cached is not None and hub.model_folder(cached):
            shutil.copytree(cached, folder, dirs_exist_ok=True)
            how = f"copied from {cached}"
        elif hub.offline():
            raise MissingFileError(f"{label}: not on this machine and downloads are off (HF_HUB_OFFLINE): get it "
                                   f"from {spec.url}")
        else:
            try:
                snapshot_download(spec.repo, revision=spec.revision, allow_patterns=list(hub.REPO_PATTERNS),
                                  local_dir=str(folder), tqdm_class=tqdm if progress else partial(tqdm, disable=True))
            except Exception as e:  # noqa: BLE001 - network, unknown repo, gated repo...
                raise MissingFileError(f"{label}: download of {spec.url} failed ({type(e).__name__}: {e})") from None
            how = f"downloaded from {spec.url}"
        if not hub.model_folder(folder):
            raise MissingFileError(f"{label}: {spec.url} holds no config.json: not a model repository")
    if progress:
        print(f"{label}: {how}", flush=True)
    return _repo_entries(spec, folder, dest)


def download_files(files: Sequence[RemoteFile], dest: str | os.PathLike, *, repos: Sequence[RemoteRepo] = (),
                   progress: bool = True, config: str = "") -> list[dict]:
    """Put every file of ``files`` and every model repository of ``repos`` (as ``dest/org/name``) into ``dest``
    (see the module docstring); returns the manifest entries.

    Every file and repository is tried, whatever failed before it; each failure is printed as it happens
    (``label: what went wrong``) and the manifest lists what was fetched.

    Raises:
        IncompleteDownload: some files could not be had from any of their URLs, or had another sha256 than the
            published one (not kept); it names each of them, and every other file is in ``dest``.
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    failed: list[str] = []

    def attempt(label: str, fetch) -> None:
        try:
            entries.extend(fetch())
        except MissingFileError as e:
            failed.append(label)
            print(f"{e}", file=sys.stderr, flush=True)

    for k, spec in enumerate(files, start=1):
        label = f"[{k}/{len(files)}] {spec.filename}"
        attempt(spec.filename, lambda spec=spec, label=label: [_download_file(spec, dest, label=label,
                                                                              progress=progress)])
    for k, spec in enumerate(repos, start=1):
        attempt(spec.repo, lambda spec=spec, k=k: download_repo(spec, dest, label=f"[repo {k}/{len(repos)}] {spec.repo}",
                                                              progress=progress))
    manifest = {"config": config, "openvocab_version": __version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": entries,
                "use": f"openvocab ... --checkpoint-dir {dest}"}
    atomic_write_json(dest / MANIFEST, manifest, indent=1)
    atomic_write_text(dest / SUMS, "".join(f"{e['sha256']}  {e['file']}\n" for e in entries))
    if failed:
        raise IncompleteDownload(f"{len(failed)} of {len(files) + len(repos)} files/repositories could not be fetched (each is named "
                                 f"above): {', '.join(failed)}; the other {len(entries)} files are in {dest} "
                                 f"({MANIFEST}); rerun to try the missing ones again")
    return entries


class IncompleteDownload(MissingFileError):
    """Some files of a download could not be had; every other file was fetched."""


def _download_file(spec: RemoteFile, dest: Path, *, label: str, progress: bool) -> dict:
    """Fetch one file into ``dest`` (or take it from the caches); its manifest entry (:class:`MissingFileError`
    naming it when no URL gives it, or it is not the published one)."""
    target = dest / spec.filename
    if target.is_file() and (not spec.sha256 or hub.sha256sum(target) == spec.sha256):
        how = "already there"
    elif (local := _local_copy(spec, target)) is not None:
        with open(local, "rb") as src, atomic_open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 24)
        how = f"copied from {local}"
    else:
        if hub.offline():
            raise MissingFileError(f"{label}: not on this machine and downloads are off (HF_HUB_OFFLINE): "
                                   f"get it from {' or '.join(spec.urls)}")
        if not spec.urls:
            raise MissingFileError(f"{label}: no download location is known")
        errors = []
        for url in spec.urls:
            try:
                _fetch(url, target, label=label, progress=progress)
                how = f"downloaded from {url}"
                break
            except OSError as e:
                errors.append(f"{url}: {getattr(e, 'reason', None) or e}")
        else:
            raise MissingFileError(f"{label}: download failed ({'; '.join(errors)})")
    digest = hub.sha256sum(target)
    if spec.sha256 and digest != spec.sha256:
        target.unlink()
        raise MissingFileError(f"{label}: sha256 {digest} is not the published {spec.sha256}; the file was "
                               f"discarded (from {' or '.join(spec.urls)})")
    if progress:
        print(f"{label}: {how}", flush=True)
    return {"file": spec.filename, "urls": spec.urls, "bytes": target.stat().st_size, "sha256": digest,
            "sha256_published": spec.sha256 is not None, "description": spec.description}
