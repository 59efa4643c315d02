"""RAM's open-set tags: one CLIP text embedding per tag.

The official ``build_openset_label_embedding`` embeds each new tag in several CLIP prompt templates
("a photo of a {}." ...), L2-normalises every embedding, averages them and L2-normalises the mean: one
``[512]`` row per tag, used in place of ``label_embed``. This project's open-set files
(``openvocab-openset-v1``, :mod:`tagging.recognize_anything.openset`) hold the normalised embedding of every
text of a tag (D rows per tag), so RAM takes the same average of whatever texts a file was made from: fill
the templates with the tag to get the official recipe (``openvocab embed-tags`` on such descriptions).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def average_tag_embeddings(embed: torch.Tensor, descriptions_per_tag: int) -> torch.Tensor:
    """``[K*D, 512]`` class-major rows -> ``[K, 512]``: each tag's normalised rows averaged, then normalised.

    ``D == 1``: the rows are already one embedding per tag and are returned unchanged."""
    rows, width = embed.shape
    if descriptions_per_tag < 1 or rows % descriptions_per_tag:
        raise ValueError(f"{rows} rows are not K tags x {descriptions_per_tag} descriptions")
    if descriptions_per_tag == 1:
        return embed
    mean = F.normalize(embed, dim=-1).view(-1, descriptions_per_tag, width).mean(dim=1)
    return F.normalize(mean, dim=-1)
