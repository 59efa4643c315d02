"""The openvocab command.

    openvocab label INPUT... --config CFG --out DIR     label images (tag -> detect -> segment)
    openvocab tag INPUT...                             print image tags
    openvocab caption INPUT...                         print image captions (Tag2Text, Florence-2)
    openvocab detect "TEXT" INPUT...                   free-text grounding
    openvocab describe-tags TAG... --out F.json        LLM descriptions of new tags (RAM++ recipe)
    openvocab embed-tags F.json --out F.safetensors    CLIP-embed descriptions for the tagger
    openvocab parse-captions FILE --tags LIST --out F  captions -> tags JSONL (training labels)
    openvocab eval ...                                 tag mAP, box/mask AP, run comparison
    openvocab train CONFIG --work-dir DIR              fine-tune (mmengine Runner, resumable)
    openvocab download --config CFG --to DIR           fetch every file a config needs (for offline machines)
    openvocab demo [--config C] [--port P]             the web demo (pip install 'openvocab[demo]')

Run "openvocab COMMAND --help" for a command's options.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from typing import Iterator, Optional, Sequence

from .config import DEFAULT_CONFIG, load_config, resolve_config  # noqa: F401  (re-exported: config resolution lives in openvocab.config)
from .errors import ArgumentParser, RunError, UserError  # noqa: F401  (UserError: imported from here by commands)

#: ``--formats`` names (:data:`openvocab.engine.job.FORMATS`; listed here so ``--help`` imports no engine)
FORMAT_NAMES = ("coco", "jsonl", "yolo", "yolo-seg", "labelme", "cvat", "voc", "labelstudio", "fiftyone", "mot", "vis")


def _at_least(convert, minimum, what: str):
    """An argparse type: ``convert(text)``, finite and at least ``minimum`` (a one-line usage error otherwise)."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value >= minimum or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be a finite number >= {minimum}, got {text}")
        return value
    return parse


def _fraction(text: str) -> float:
    """An argparse type: a number in ``[0, 1]``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _port(text: str) -> int:
    """An argparse type: a TCP port, 1..65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1..65535, got {text}")
    return value


_positive_int = _at_least(int, 1, "a whole number")
_non_negative_int = _at_least(int, 0, "a whole number")
_non_negative_float = _at_least(float, 0.0, "a number")


def _positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    value = _non_negative_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _common(p: argparse.ArgumentParser, default_config: str) -> None:
    p.add_argument("--config", "-c", default=default_config,
                   help=f"pipeline config file or name under configs/ (default: {default_config})")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE",
                   help="override config entries, e.g. detector.box_threshold=0.3")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: the config's, else cpu)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="autocast precision")
    p.add_argument("--checkpoint-dir", action="append", default=[], metavar="DIR",
                   help="folder holding downloaded checkpoints (repeatable; also $OPENVOCAB_CHECKPOINT_DIR)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = ArgumentParser(prog="openvocab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what each stage does (INFO)")
    parser.add_argument("--version", action="version", version=f"openvocab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("label", help="label images and videos: tags, boxes, masks, tracks -> COCO/JSONL/YOLO/MOT/...")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image or video files, folders, globs or .txt lists of paths")
    p.add_argument("--out", "-o", required=True, help="output folder")
    _common(p, DEFAULT_CONFIG)
    p.add_argument("--vocab", help='user vocabulary instead of the tagger, e.g. "cat, dog, fire hydrant"')
    p.add_argument("--caption-tags", metavar="TAGS",
                   help='tags that steer every caption (a config with a captioner), e.g. "dog, beach"')
    p.add_argument("--examples", metavar="FILE",  # label by example (openvocab.example_files)
                   help="labelled examples of more classes: a COCO JSON (boxes/masks on reference images) or a folder "
                        "of <class>/ crops; needs a config with an exemplar_detector (e.g. tiny_examples)")
    p.add_argument("--formats", default="coco,jsonl",
                   help=f"comma list of {','.join(f for f in FORMAT_NAMES if f != 'vis')} (default coco,jsonl)")
    p.add_argument("--vis", action="store_true", help="also write overlay pictures to OUT/vis/")
    p.add_argument("--image-root", metavar="DIR",
                   help="folder the outputs name images relative to (COCO file_name...; default: the deepest "
                        "folder holding every input; kept by --resume)")
    p.add_argument("--val-fraction", type=_fraction, default=None,
                   help="share of images in the YOLO val split, by a hash of each image's path (default 0.1)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help="images per model batch (default: the config's, else 1)")
    p.add_argument("--workers", type=_non_negative_int, default=None,
                   help="loader threads decoding and resizing ahead of the models (default: one per CPU, at most 8; "
                        "0: one image at a time, no overlap)")
    p.add_argument("--resume", action="store_true", help="continue the job recorded in --out (after a kill too)")
    p.add_argument("--overwrite", action="store_true",
                   help="start over in an --out that holds an earlier job (its record is kept as a backup)")
    p.add_argument("--max-pixels", type=_positive_int, default=None, help="refuse images larger than this (bombs)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("videos (pip install 'openvocab[video]'; the tracker: the config's tracker = dict(...))")
    g.add_argument("--fps", type=_positive_float, default=None, help="label F frames per second of each video "
                   "(by timestamps; default: every frame, or the config's video.fps)")
    g.add_argument("--stride", type=_positive_int, default=None, help="label every N-th frame of each video")
    g = p.add_argument_group("scale-out (Ray; pip install 'openvocab[ray]')")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process (default); ray: an actor pool on a Ray cluster or local Ray")
    g.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray)")
    g.add_argument("--num-workers", type=_positive_int, default=1, help="pipeline actors (each builds the pipeline once)")
    g.add_argument("--gpus-per-worker", type=_non_negative_float, default=0.0, help="GPUs per actor (e.g. 1)")
    g.add_argument("--cpus-per-worker", type=_non_negative_float, default=1.0, help="CPUs per actor")

    p = sub.add_parser("tag", help="print the tags of images")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs or .txt lists of paths")
    _common(p, "tagger_only")
    p.add_argument("--tag-language", choices=["en", "zh"], default=None,
                   help="language of the tag names, where the tag list has it (RAM, RAM++: zh)")
    p.add_argument("--json", action="store_true", help="one JSON line per image")

    p = sub.add_parser("caption", help="print a caption of each image (Tag2Text, Florence-2)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs or .txt lists of paths")
    _common(p, "tagger_tag2text")
    p.add_argument("--caption-tags", metavar="TAGS", help='tags that steer every caption (Tag2Text), e.g. "dog, beach"')
    p.add_argument("--json", action="store_true", help="one JSON line per image")

    p = sub.add_parser("detect", help='free-text grounding: openvocab detect "a red car" IMAGE...')
    p.add_argument("text", help='what to find, in plain words, e.g. "the man in a red shirt"')
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs or .txt lists of paths")
    _common(p, "detect_segment")
    p.add_argument("--json", action="store_true", help="one JSON line per image")

    p = sub.add_parser("describe-tags", help="write LLM descriptions of new tags (RAM++ recipe)")
    p.add_argument("tags", nargs="+", metavar="TAG", help='new tag names, e.g. "snow leopard"')
    p.add_argument("--out", "-o", required=True, help="descriptions JSON ([{tag: [descriptions]}])")
    p.add_argument("--config", "-c", default="tools/describe_tags")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE")

    p = sub.add_parser("embed-tags", help="CLIP-embed tag descriptions into an open-set file for the tagger")
    p.add_argument("descriptions", help="descriptions JSON from describe-tags")
    p.add_argument("--out", "-o", required=True, help="output .safetensors")
    p.add_argument("--config", "-c", default="tools/embed_tags")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE")
    p.add_argument("--checkpoint-dir", action="append", default=[], metavar="DIR")

    p = sub.add_parser("parse-captions", help="captions -> image tags JSONL (training labels)")
    p.add_argument("file", help="JSONL {file, caption}, 'file<TAB>caption' lines, or one caption per line")
    p.add_argument("--tags", required=True, help="tag list file (one tag per line)")
    p.add_argument("--out", "-o", required=True, help="output JSONL")
    p.add_argument("--config", "-c", default="tools/parse_captions")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE")

    p = sub.add_parser("train", help="fine-tune a tagger or detector with mmengine (configs/train/)")
    p.add_argument("config", help="training config (file or name under configs/, e.g. train/tagger_tiny)")
    p.add_argument("--work-dir", help="checkpoints and logs (default: the config's work_dir)")
    p.add_argument("--max-iters", type=int, help="override train_cfg.max_iters")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming the last checkpoint")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE")
    p.add_argument("--checkpoint-dir", action="append", default=[], metavar="DIR")

    p = sub.add_parser("download", help="fetch every file a pipeline config needs (for offline machines)",
                       description="Fetch every checkpoint and data file a pipeline config needs into one folder "
                                   "(sha256 checked where published; manifest.json and SHA256SUMS written). "
                                   "Carry the folder to an offline machine and run with --checkpoint-dir FOLDER.")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                   help=f"pipeline config file or name under configs/ (default: {DEFAULT_CONFIG})")
    p.add_argument("--to", metavar="DIR", help="destination folder (default: openvocab's cache, $OPENVOCAB_CACHE)")
    p.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE", help="override config entries")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

    p = sub.add_parser("demo", help="the web demo in your browser (Gradio; pip install 'openvocab[demo]')")
    p.add_argument("--config", "-c", default=DEFAULT_CONFIG,
                   help=f"pipeline config chosen when the page opens (default: {DEFAULT_CONFIG}; tiny_random runs "
                        "offline with random weights)")
    p.add_argument("--port", "-p", type=_port, default=7860, help="port (default 7860)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: every one)")
    p.add_argument("--device", help="device chosen when the page opens (cpu, cuda:0...)")
    p.add_argument("--checkpoint-dir", action="append", default=[], metavar="DIR",
                   help="folder holding downloaded checkpoints (repeatable; also $OPENVOCAB_CHECKPOINT_DIR)")

    sub.add_parser("eval", help="evaluate tags/boxes/masks (openvocab eval --help)", add_help=False)
    return parser


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler stopping the job) is handled as Ctrl-C: a labeling job writes what is done
    and says how to resume, instead of vanishing silently."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), "")
    try:
        with _terminate_as_interrupt():
            return _main(argv)
    except KeyboardInterrupt:  # at any moment, start-up included
        hint = ("; finished images are recorded in --out: rerun with --resume to go on" if command == "label" else "")
        print(f"openvocab{' ' + command if command else ''}: interrupted{hint}", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    if argv[:1] == ["eval"]:
        from .evaluation.cli import main as eval_main

        return eval_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    from . import commands
    from .checkpoint import CheckpointError
    from .hub import MissingFileError, set_checkpoint_dirs

    set_checkpoint_dirs(getattr(args, "checkpoint_dir", []) or [])
    try:
        return getattr(commands, args.command.replace("-", "_"))(args)
    except (UserError, MissingFileError, CheckpointError) as e:
        print(f"openvocab {args.command}: {e}", file=sys.stderr)
        return 2
    except RunError as e:  # the engine's lock, output and record errors too
        print(f"openvocab {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
