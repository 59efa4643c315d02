"""The CLI's sub-commands (argument parsing is in :mod:`openvocab.cli`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import load_config
from .errors import RunError, UserError


def _pipeline(args: argparse.Namespace, *, vocabulary=None, need=(), without=(), options=(), examples=None):
    from .build import build_pipeline

    cfg = load_config(args.config, list(args.cfg_options or []) + list(options))
    try:
        pipe = build_pipeline(cfg, vocabulary=vocabulary, device=args.device, precision=args.precision,
                              without=without, caption_tags=getattr(args, "caption_tags", None) or None,
                              examples=examples)
    except (KeyError, ValueError, TypeError) as e:
        raise UserError(f"{args.config}: cannot build the pipeline ({e})") from None
    for stage in need:
        if getattr(pipe, stage) is None:
            raise UserError(f"config {args.config} has no {stage.replace('_', ' ')}")
    return cfg, pipe


def label(args: argparse.Namespace) -> int:
    from .engine import RayOptions, parse_formats, run_job
    from .video.job import VideoOptions

    try:
        formats = parse_formats(args.formats)
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    examples = None
    if getattr(args, "examples", None):  # label by example: read and checked before any model loads
        from .example_files import read_examples

        examples = read_examples(args.examples, max_pixels=args.max_pixels)
    cfg, pipe = _pipeline(args, vocabulary=args.vocab, examples=examples)
    if args.fps is not None and args.stride is not None:
        raise UserError("--fps and --stride exclude each other")
    video = VideoOptions.from_config(cfg, fps=args.fps, stride=args.stride)
    batch = args.batch_size or cfg.get("batch_size", 1)
    ray = RayOptions(address=args.ray_address, num_workers=args.num_workers, gpus_per_worker=args.gpus_per_worker,
                     cpus_per_worker=args.cpus_per_worker)
    summary = run_job(pipe, args.inputs, args.out, formats=formats, vis=args.vis, batch_size=batch,
                      workers=args.workers, resume=args.resume, overwrite=args.overwrite, max_pixels=args.max_pixels,
                      progress=not args.no_progress, engine=args.engine, ray=ray,
                      writer_options=_writer_options(cfg, args), image_root=args.image_root, video=video)
    for note in summary.notes:  # e.g. label by example's calibrated thresholds
        print(note, file=sys.stderr)
    rate = summary.labeled / summary.seconds if summary.seconds else 0.0
    frames = f", {summary.frames} video frames" if summary.videos else ""
    print(f"labeled {summary.labeled} {'inputs' if summary.videos else 'images'}{frames} ({summary.skipped} already "
          f"done, {len(summary.failed)} failed) in {summary.seconds:.1f}s ({rate:.2f} "
          f"{'inputs' if summary.videos else 'img'}/s) -> {args.out}", file=sys.stderr)
    if summary.failed:
        print(f"failures are listed in {Path(args.out) / 'failures.jsonl'}", file=sys.stderr)
    return summary.exit_code


def _writer_options(cfg, args: argparse.Namespace) -> dict[str, dict]:
    """Writer options per format: the config's ``writers = dict(<format>=dict(...))`` (``--cfg-options
    writers.labelme.epsilon=2`` included), then ``--val-fraction`` for the YOLO formats."""
    from .engine import FORMATS
    from .video.job import OPTION_KEYS

    given = cfg.get("writers", None) or {}
    if not isinstance(given, dict):
        raise UserError(f"{args.config}: 'writers' must be a dict of format -> options, got {type(given).__name__}")
    known = list(FORMATS) + [k for k in OPTION_KEYS.values() if k not in FORMATS]  # [video] mot, vis_video...
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UserError(f"{args.config}: 'writers' names unknown format(s) {unknown}; formats: {', '.join(known)}")
    options = {}
    for name, opts in given.items():
        if not isinstance(opts, dict):
            raise UserError(f"{args.config}: writers.{name} must be a dict of options, got {opts!r}")
        options[name] = {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in opts.items()}
    if args.val_fraction is not None:
        for name in ("yolo", "yolo-seg"):
            options[name] = {**options.get(name, {}), "val_fraction": args.val_fraction}
    return options


def _each_image(inputs):
    """(file, image, info) for loadable inputs; (file, None, error) for the others."""
    from .images import ImageLoadError, expand_inputs, load_image

    files, missing = expand_inputs(list(inputs))
    for m in missing:
        yield m, None, m.reason
    for f in files:
        try:
            img, info = load_image(f)
        except ImageLoadError as e:
            yield f, None, e.message
            continue
        yield f, img, info


def _tag_text(t) -> str:
    """``dog/狗 (0.91)``; open-set and user tags are marked: ``snow leopard (0.62) [open-set]``."""
    from .structures import TagSource

    name = f"{t.name}/{t.name_zh}" if t.name_zh else t.name
    mark = "" if t.source == TagSource.CLOSED_SET else f" [{t.source.value}]"
    return f"{name} ({t.score:.2f}){mark}"


def _per_image(args: argparse.Namespace, pipe, show) -> int:
    """``show(file, image, info)`` for each loadable input (the pipeline set up first); an input that is not an image
    is one line on stderr and the rest go on. Exit status 1 when any failed."""
    from .engine import setup_pipeline

    setup_pipeline(pipe)
    failed = 0
    for f, img, info in _each_image(args.inputs):
        if img is None:
            print(f"{f}: ERROR {info}", file=sys.stderr)
            failed += 1
            continue
        show(f, img, info)
    return 1 if failed else 0


def tag(args: argparse.Namespace) -> int:
    language = [f"tagger.tag_language={args.tag_language}"] if args.tag_language else []
    _, pipe = _pipeline(args, need=("tagger",), options=language,
                        without=("detector", "mask_head", "segmenter", "stuff_segmenter", "captioner",
                                 "exemplar_detector"))

    def show(f, img, info) -> None:
        (result,) = pipe.run([img], [info])  # the pipeline's steps (a tagger only)
        if args.json:
            print(json.dumps({"file": f, "tags": [{"name": t.name, "score": round(t.score, 4),
                                                   "source": t.source.value, "name_zh": t.name_zh}
                                                  for t in result.tags]}, ensure_ascii=False))
        else:
            print(f"{f}: " + " | ".join(_tag_text(t) for t in result.tags))
    return _per_image(args, pipe, show)


def caption(args: argparse.Namespace) -> int:
    _, pipe = _pipeline(args, need=("captioner",), without=("detector", "mask_head", "segmenter", "stuff_segmenter",
                                                             "exemplar_detector"))

    def show(f, img, info) -> None:
        (result,) = pipe.run([img], [info])  # the pipeline's steps: tags (if a tagger), then the caption
        if args.json:
            print(json.dumps({"file": f, "caption": result.caption, "tags": [t.name for t in result.tags]},
                             ensure_ascii=False))
        else:
            print(f"{f}: {result.caption}")
    return _per_image(args, pipe, show)


def detect(args: argparse.Namespace) -> int:
    from .masks import mask_area

    # free-text grounding needs the detector only: no tagger, no mask head is built or downloaded
    _, pipe = _pipeline(args, vocabulary="object", need=("detector",),
                        without=("tagger", "boxable_filter", "mask_head", "segmenter", "stuff_segmenter", "captioner",
                                 "caption_parser", "exemplar_detector"))

    def show(f, img, info) -> None:
        try:
            found = pipe.ground([img], [args.text], segment=False)[0]
        except NotImplementedError as e:
            raise UserError(f"{args.config}: {e}") from None
        dets, regions = (found.detections, found.regions) if hasattr(found, "regions") else (found, None)
        rows = [{"box": [round(float(v), 2) for v in b], "score": round(float(s), 4), "phrase": p}
                for b, s, p in zip(dets.boxes, dets.scores, dets.phrases)]
        for k, row in enumerate(rows if regions is not None else []):  # a detector that segments (PSALM)
            row["mask"], row["mask_area"] = regions.masks[k], int(mask_area(regions.masks[k]))
        if args.json:
            print(json.dumps({"file": f, "text": args.text, "detections": rows}))
        else:
            print(f"{f}: {len(rows)} boxes")
            for r in rows:
                mask = f" mask {r['mask_area']} px" if "mask" in r else ""
                print(f"  {r['phrase']!r} {r['score']:.2f} {r['box']}{mask}")
    return _per_image(args, pipe, show)


def _tool(args: argparse.Namespace, key: str):
    from .registry import TOOLS

    cfg = load_config(args.config, args.cfg_options)
    if key not in cfg:
        raise UserError(f"{args.config}: no '{key}' entry")
    return cfg, TOOLS.build(cfg[key])


def describe_tags(args: argparse.Namespace) -> int:
    _, describer = _tool(args, "describer")
    out = describer.describe(args.tags)  # a backend failure is a RunError (one line, exit 1)
    _write_text(args.out, json.dumps([{t: d} for t, d in out.items()], indent=1, ensure_ascii=False))
    print(f"described {len(out)} tags -> {args.out}", file=sys.stderr)
    return 0


def embed_tags(args: argparse.Namespace) -> int:
    src = Path(args.descriptions)
    try:
        data = json.loads(src.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = [data]
        descriptions = {k: list(v) for item in data for k, v in item.items()}
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise UserError(f"{src}: not a descriptions JSON ([{{tag: [descriptions]}}]): {e}") from None
    _, embedder = _tool(args, "embedder")
    embedder.embed_to_file(descriptions, args.out)
    print(f"embedded {len(descriptions)} tags -> {args.out}", file=sys.stderr)
    return 0


def _read_captions(path: Path) -> tuple[list[tuple[str, str]], list[int]]:
    """``(rows, bad_lines)``: ``(file, caption)`` per usable line, and the numbers of the lines that are
    not valid UTF-8 (left out; the caller reports them after writing the rest)."""
    rows, bad = [], []
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: {e.strerror or e}") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte-order mark
    for i, raw in enumerate(data.splitlines(), 1):  # \n, \r\n and \r, as editors number lines
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
            continue
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
                rows.append((str(obj.get("file", obj.get("image", i))), str(obj["caption"])))
            except (ValueError, KeyError, AttributeError) as e:
                raise UserError(f"{path}:{i}: bad JSON line ({type(e).__name__}: {e})") from None
        elif "\t" in line:
            rows.append(tuple(line.split("\t", 1)))
        else:
            rows.append((str(i), line))
    return rows, bad


def _write_text(path: str, text: str) -> None:
    from .writers.base import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise RunError(f"{path}: cannot write ({e.strerror or e})") from None


def parse_captions(args: argparse.Namespace) -> int:
    if not Path(args.tags).is_file():
        raise UserError(f"{args.tags}: tag list not found")
    args.cfg_options = list(args.cfg_options or []) + [f"parser.tag_list={args.tags}"]
    _, parser = _tool(args, "parser")
    rows, bad = _read_captions(Path(args.file))
    tags = parser.parse([c for _, c in rows])
    _write_text(args.out, "".join(json.dumps({"file": f, "caption": c, "tags": t}, ensure_ascii=False) + "\n"
                                  for (f, c), t in zip(rows, tags)))
    print(f"parsed {len(rows)} captions -> {args.out}", file=sys.stderr)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (f" ... (+{len(bad) - 10} more)" if len(bad) > 10 else "")
        print(f"openvocab parse-captions: {args.file}: {len(bad)} line{'s' if len(bad) > 1 else ''} not valid "
              f"UTF-8, left out: line{'s' if len(bad) > 1 else ''} {shown}", file=sys.stderr)
        return 1
    return 0


def _missing_training_data(cfg) -> list[str]:
    """``loader.dataset.key=path`` of each data file or folder a training config names that does not exist."""
    missing = []
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        dataset = (cfg.get(loader) or {}).get("dataset") or {}
        for key in ("ann_file", "img_dir", "data_root"):
            value = dataset.get(key) if hasattr(dataset, "get") else None
            if isinstance(value, str) and value and not Path(value).exists():
                missing.append(f"{loader}.dataset.{key}={value}")
    return missing


def train(args: argparse.Namespace) -> int:
    from .training.runner import build_runner

    cfg = load_config(args.config, args.cfg_options)
    missing = _missing_training_data(cfg)
    if missing:  # before the runner makes its work dir
        raise UserError(f"{args.config}: training data not found: {', '.join(missing)} (make it first, see the "
                        "README's Training section, or point the config at your data with --cfg-options "
                        f"{missing[0].split('=', 1)[0]}=PATH)")
    try:
        runner = build_runner(cfg, work_dir=args.work_dir, resume=not args.no_resume, max_iters=args.max_iters)
    except (KeyError, ValueError, TypeError) as e:
        raise UserError(f"{args.config}: cannot build the training run ({e})") from None
    try:
        runner.train()
    except OSError as e:  # a data file that went missing or cannot be read mid-run
        raise RunError(f"training stopped: {e.filename or ''}: {e.strerror or e} (the last checkpoint in "
                       f"{runner.work_dir} resumes it)") from None
    print(f"training done -> {runner.work_dir}", file=sys.stderr)
    return 0


def download(args: argparse.Namespace) -> int:
    from .download import MANIFEST, download_files
    from .hub import cache_dir

    cfg = load_config(args.config, args.cfg_options)
    args.device, args.precision = "cpu", None
    vocabulary = None if cfg.get("tagger") else "object"  # a detector without a tagger needs some vocabulary
    _, pipe = _pipeline(args, vocabulary=vocabulary)
    files, repos = pipe.remote_files(), pipe.remote_repos()
    dest = Path(args.to) if args.to else cache_dir()
    if not files and not repos:
        print(f"{args.config} needs no downloadable file", file=sys.stderr)
        return 0
    entries = download_files(files, dest, repos=repos, progress=not args.no_progress, config=args.config)
    size = sum(e["bytes"] for e in entries) / 1e9
    print(f"{len(entries)} files ({size:.2f} GB) in {dest} (list: {dest / MANIFEST}); offline, run with "
          f"--checkpoint-dir {dest}", file=sys.stderr)
    return 0


def demo_module():
    """The web demo's app module, ``openvocab.demo.app`` (the checkout's ``demo/`` is installed as the package
    ``openvocab.demo``, editable or from a wheel: setup.py maps it)."""
    import importlib

    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UserError("the demo needs Gradio: pip install 'openvocab[demo]'") from None
    try:
        return importlib.import_module("openvocab.demo.app")
    except ModuleNotFoundError as e:
        if e.name not in ("openvocab.demo", "openvocab.demo.app"):
            raise
        raise UserError("the demo is not installed with openvocab (openvocab.demo is missing): reinstall it, "
                        "pip install -e '.[demo]' in a checkout") from None


def demo(args: argparse.Namespace) -> int:
    load_config(args.config)  # a wrong --config fails here, in one line, before the server starts
    app = demo_module()
    try:
        return app.main(config=args.config, host=args.host, port=args.port, device=args.device)
    except OSError as e:  # the port is taken, or the address is not this machine's
        raise RunError(f"cannot serve the demo on {args.host}:{args.port}: {str(e).splitlines()[0] if str(e) else e} "
                       "(choose another --port, or stop what uses it)") from None
