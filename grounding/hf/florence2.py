"""``Florence2Captioner``: image captions from Florence-2 through ``transformers`` (its native port, >= 5).

Florence-2 is prompted by a task token; this stage runs one of its three caption tasks (``<CAPTION>``,
``<DETAILED_CAPTION>``, ``<MORE_DETAILED_CAPTION>``) on every image. The image processor runs per image (in the
job's loader workers through :meth:`Florence2Captioner.prepare`); a batch is one ``generate`` call (beam search,
the published settings by default), and each answer is the processor's own ``batch_decode`` +
``post_process_generation``, as the model card does it.

Batching does not change a caption: every image is resized to the processor's one input size and every image of
a batch has the same task prompt, so the encoder inputs need no padding. ``generate`` pads the rows that ended
early with ``<pad>`` after their end token, and ``post_process_generation`` keeps ``<pad>`` in a text answer;
each row is therefore cut after its end token before decoding, which gives exactly the caption of the image
generated alone.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from openvocab.dtypes import check_device_dtype
from openvocab.registry import CAPTIONERS
from openvocab.stages import Captioner

from .loading import DTYPES, HubModel, check_backend, check_dtype, check_model, check_positive, image_size, load

MODEL_TYPES = {"florence2": "Florence-2"}
#: the caption tasks (Florence-2's task tokens)
TASKS = ("<CAPTION>", "<DETAILED_CAPTION>", "<MORE_DETAILED_CAPTION>")
#: the native port of Microsoft's Florence-2 release that transformers' docs name
DEFAULT_MODEL = "florence-community/Florence-2-base"


def check_native(folder: Path) -> None:
    """``ValueError`` for a checkpoint in the original Florence-2 layout (``auto_map`` remote code, a ``davit``
    vision config, other weight names), which the native ``Florence2ForConditionalGeneration`` cannot load."""
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # load() reports an unreadable config.json
    if not isinstance(cfg, dict) or cfg.get("model_type") != "florence2":
        return  # load() names a model of another type
    vision = cfg.get("vision_config")
    vision = vision.get("model_type") if isinstance(vision, dict) else None
    if "auto_map" in cfg or vision == "davit":
        raise ValueError(f"{folder} is a Florence-2 checkpoint for trust_remote_code (vision {vision!r}); "
                         f"transformers' native Florence-2 needs a converted one, e.g. {DEFAULT_MODEL} or "
                         "florence-community/Florence-2-large")


def end_of_answer(row: Sequence[int], eos: set[int]) -> list[int]:
    """``row`` (a generated sequence, the decoder start token first) up to and including its first end token: what
    ``generate`` wrote after it is padding."""
    row = list(row)
    for k in range(1, len(row)):
        if row[k] in eos:
            return row[:k + 1]
    return row


@CAPTIONERS.register_module()
class Florence2Captioner(HubModel, Captioner):
    """Florence-2 (``Florence2ForConditionalGeneration`` + ``Florence2Processor``) captions.

    Florence-2 is not guided by tags: the ``tags`` given to :meth:`caption` are ignored.

    Args:
        model: Hugging Face hub id (``"florence-community/Florence-2-base"`` or ``-large``, the native ports) or a
            local folder; resolved in ``setup()``. A checkpoint in the original ``trust_remote_code`` layout (as
            Microsoft's repositories were first published) is refused (:func:`check_native`).
        revision: a hub revision to pin.
        task: ``"<CAPTION>"`` (one sentence), ``"<DETAILED_CAPTION>"`` or ``"<MORE_DETAILED_CAPTION>"`` (a
            paragraph).
        num_beams: beam width (3, as the model card's example).
        max_new_tokens: the most tokens generated per caption (1024, as the model card's example); the
            checkpoint's ``generation_config.json`` gives the rest (``no_repeat_ngram_size``, ``early_stopping``...).
        batch_size: images per ``generate`` call (``None``: the whole batch the job hands over).
        dtype: the weights' dtype (``"float32"``, ``"bfloat16"``, ``"float16"``).
        processor_backend: the image processor's backend (``None``: transformers' default, ``"pil"`` or
            ``"torchvision"``).
    """

    what = "transformers Florence-2"

    def __init__(self, *, model: str = DEFAULT_MODEL, revision: Optional[str] = None, task: str = "<CAPTION>",
                 num_beams: int = 3, max_new_tokens: int = 1024, batch_size: Optional[int] = None,
                 dtype: str = "float32", processor_backend: Optional[str] = None) -> None:
        check_model(model)
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)} (got {task!r})")
        check_positive("num_beams", num_beams)
        check_positive("max_new_tokens", max_new_tokens)
        check_positive("batch_size", batch_size, optional=True)
        self.model, self.revision, self.task = model, revision, task
        self.num_beams, self.max_new_tokens, self.batch_size = num_beams, max_new_tokens, batch_size
        self.dtype, self.processor_backend = check_dtype(dtype), check_backend(processor_backend)
        self.net = self.processor = None
        self.device: Optional[str] = None
        self._prompt: Optional[dict[str, torch.Tensor]] = None

    def setup(self, device: str = "cpu") -> None:
        if self.net is not None and self.device == device:
            return
        from openvocab.hub import resolve_repo

        check_device_dtype(DTYPES[self.dtype], device)
        folder = resolve_repo(self.model, revision=self.revision, description=self.what)
        check_native(folder)
        loaded = load(str(folder), auto_class="Florence2ForConditionalGeneration", types=MODEL_TYPES, device=device,
                      dtype=self.dtype, processor_backend=self.processor_backend, description=self.what)
        self.net, self.processor, self.device = loaded.model, loaded.processor, device
        self._prompt = self.prompt()

    def _need_setup(self) -> None:
        if self.processor is None:
            raise ValueError("Florence2Captioner.setup(device) must be called first")

    def prompt(self) -> dict[str, torch.Tensor]:
        """The encoder's text inputs for the task (batch 1), laid out as ``Florence2Processor`` lays them out: the
        image's placeholder tokens, then ``<s>`` + the task's prompt + ``</s>``."""
        self._need_setup()
        p = self.processor
        tok = p.tokenizer
        text = p.image_token * p.num_image_tokens + tok.bos_token + p.task_prompts_without_inputs[self.task] \
            + tok.eos_token
        enc = tok(text, add_special_tokens=False, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """``pixel_values [3, S, S]`` of one image (Florence-2's image processor)."""
        self._need_setup()
        image_size(image)
        return self.processor.image_processor(images=image, return_tensors="pt")["pixel_values"][0]

    def generate(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The generated token ids ``[n, L]`` (the decoder start token first) of a batch of processed images."""
        n = pixel_values.shape[0]
        text = {k: v.expand(n, -1).to(self.device) for k, v in self._prompt.items()}
        dtype = next(self.net.parameters()).dtype
        with torch.no_grad():
            return self.net.generate(**text, pixel_values=pixel_values.to(device=self.device, dtype=dtype),
                                     num_beams=self.num_beams, max_new_tokens=self.max_new_tokens, do_sample=False)

    def answers(self, sequences: torch.Tensor, sizes: Sequence[tuple[int, int]]) -> list[str]:
        """The processor's answer for the task from each generated row (``sizes``: each image's ``(h, w)``)."""
        eos = self.net.generation_config.eos_token_id
        eos = self.processor.tokenizer.eos_token_id if eos is None else eos
        eos = {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}
        rows = [end_of_answer(r, eos) for r in sequences.tolist()]
        texts = self.processor.batch_decode(rows, skip_special_tokens=False)
        return [self.processor.post_process_generation(t, task=self.task, image_size=(w, h))[self.task]
                for t, (h, w) in zip(texts, sizes)]

    def caption(self, images: Sequence[np.ndarray], tags: Optional[Sequence[Any]] = None,
                prepared: Optional[Sequence[torch.Tensor]] = None) -> list[str]:
        """One caption per RGB uint8 ``[H, W, 3]`` image; ``tags`` are ignored (Florence-2 is not tag-guided)."""
        self._need_setup()
        if (tags is not None and len(tags) != len(images)) or (prepared is not None and len(prepared) != len(images)):
            raise ValueError("one tag list (when given) and one prepared input (when given) per image are required")
        sizes = [image_size(im) for im in images]
        step = self.batch_size or max(1, len(images))
        out: list[str] = []
        for start in range(0, len(images), step):
            idx = range(start, min(start + step, len(images)))
            pv = torch.stack([prepared[i] if prepared is not None else self.prepare(images[i]) for i in idx])
            out += self.answers(self.generate(pv), [sizes[i] for i in idx])
        return out
