"""CLIP's text tower (ViT-B/16 layout of ``openai/clip-vit-base-patch16``) through ``transformers``.

``encode(texts)`` gives one L2-normalised 512-d vector per text, as RAM++'s open-set path does
with OpenAI ``clip``: context 77, over-long texts cut with the end-of-text token kept last, the
feature taken at the end-of-text token and projected.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

from openvocab import hub
from openvocab.checkpoint import load_strict, read_state_dict
from openvocab.registry import TEXT_ENCODERS

HF_REPO = "openai/clip-vit-base-patch16"
WEIGHTS = {
    # the repository's original PyTorch weights (read with weights_only=True); sha256 not recorded
    "clip_vit_b_16": hub.RemoteFile("clip-vit-base-patch16.bin", hf_repo=HF_REPO, hf_filename="pytorch_model.bin",
                                    description="CLIP ViT-B/16 weights"),
}
TOKENIZER_FILES = {
    # unique local names: a checkpoint folder may hold other models' vocab.json / merges.txt
    "vocab": hub.RemoteFile("clip-vit-base-patch16-vocab.json", hf_repo=HF_REPO, hf_filename="vocab.json",
                            description="CLIP BPE vocabulary"),
    "merges": hub.RemoteFile("clip-vit-base-patch16-merges.txt", hf_repo=HF_REPO, hf_filename="merges.txt",
                             description="CLIP BPE merges"),
}


def build_clip_text(*, vocab_size: int = 49408, hidden_size: int = 512, intermediate_size: int = 2048,
                    num_hidden_layers: int = 12, num_attention_heads: int = 8, projection_dim: int = 512,
                    max_position_embeddings: int = 77, eos_token_id: int = 2) -> CLIPTextModelWithProjection:
    """A CLIP text tower (defaults: ViT-B/16's), randomly initialised."""
    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                         num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                         projection_dim=projection_dim, max_position_embeddings=max_position_embeddings,
                         hidden_act="quick_gelu", eos_token_id=eos_token_id)
    return CLIPTextModelWithProjection(cfg).eval()


def build_clip_text_tiny(*, vocab_size: int = 64, projection_dim: int = 512,
                         eos_token_id: int = 2) -> CLIPTextModelWithProjection:
    return build_clip_text(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, projection_dim=projection_dim, eos_token_id=eos_token_id)


BUILDERS = {"vit_b_16": build_clip_text, "tiny": build_clip_text_tiny}


def convert_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Full CLIP (``CLIPModel``) weights -> the text tower's keys (vision keys dropped)."""
    return {k: v for k, v in sd.items()
            if (k.startswith("text_model.") or k.startswith("text_projection."))
            and not k.endswith("position_ids")}


@TEXT_ENCODERS.register_module()
class CLIPTextEncoder:
    """Texts -> ``float32 [N, projection_dim]`` unit vectors.

    Args:
        variant: ``"vit_b_16"`` or ``"tiny"`` (tests). checkpoint: ``"clip_vit_b_16"`` (hub), a
            path, or ``None`` (random). vocab / merges: BPE files (``None``: the hub's ViT-B/16 ones).
        batch_size: texts per forward pass. context_length: 77 as CLIP.
    """

    def __init__(self, *, variant: str = "vit_b_16", checkpoint: Optional[str] = "clip_vit_b_16",
                 vocab: Optional[str] = None, merges: Optional[str] = None, batch_size: int = 256,
                 context_length: int = 77, device: str = "cpu", seed: int = 0) -> None:
        if variant not in BUILDERS:
            raise ValueError(f"unknown CLIP text variant {variant!r} (choose from {sorted(BUILDERS)})")
        self.variant, self.checkpoint, self.vocab, self.merges = variant, checkpoint, vocab, merges
        self.batch_size, self.context_length, self.device, self.seed = batch_size, context_length, device, seed
        self.model: Optional[CLIPTextModelWithProjection] = None
        self.tokenizer: Optional[CLIPTokenizer] = None

    def setup(self, device: Optional[str] = None) -> "CLIPTextEncoder":
        self.device = device or self.device
        if self.model is None:
            vocab = hub.resolve(self.vocab or TOKENIZER_FILES["vocab"])
            merges = hub.resolve(self.merges or TOKENIZER_FILES["merges"])
            self.tokenizer = CLIPTokenizer(vocab=str(vocab), merges=str(merges))  # file paths
            torch.manual_seed(self.seed)
            kwargs = {"eos_token_id": self.tokenizer.eos_token_id}  # pool at the (first) end-of-text token
            if self.variant == "tiny":
                kwargs["vocab_size"] = len(self.tokenizer)
            self.model = BUILDERS[self.variant](**kwargs)
            if self.checkpoint is not None:
                path = hub.resolve(WEIGHTS.get(self.checkpoint, self.checkpoint))
                load_strict(self.model, convert_state_dict(read_state_dict(path)), source=str(path))
        self.model.to(self.device)
        return self

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """CLIP tokens: ``<sot> text <eot>``, cut to the context with ``<eot>`` kept last, padded."""
        return self.tokenizer(list(texts), padding="max_length", truncation=True,
                              max_length=self.context_length, return_tensors="pt")

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        if self.model is None:
            self.setup()
        out = []
        for i in range(0, len(texts), self.batch_size):
            tok = self.tokenize(texts[i:i + self.batch_size])
            emb = self.model(input_ids=tok["input_ids"].to(self.device),
                             attention_mask=tok["attention_mask"].to(self.device)).text_embeds
            out.append(F.normalize(emb.float(), dim=-1).cpu())
        dim = self.model.config.projection_dim
        return torch.cat(out) if out else torch.zeros(0, dim)
