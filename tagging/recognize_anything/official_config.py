"""Model keyword arguments from the official recognize-anything JSON configs (as the parity fixtures store them).

``swin_config`` (``config_swin*_*.json``): ``image_res``, ``window_size``, ``embed_dim``, ``depths``,
``num_heads``, optionally ``vision_width``. ``q2l_config`` / ``med_config``: BERT configs (``hidden_size``,
``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size``, ``layer_norm_eps``, ``hidden_act``,
``vocab_size``, ``max_position_embeddings``).
"""
from __future__ import annotations

from typing import Mapping


def _missing(e: Exception) -> ValueError:
    return ValueError(f"official config lacks {e}")


def swin_kwargs(swin: Mapping) -> dict:
    """``image_size``, ``embed_dim``, ``depths``, ``num_heads``, ``window_size`` of a Swin config.

    A ``vision_width`` other than the Swin output width, which the official model cannot run either,
    is a ``ValueError``."""
    try:
        kwargs = dict(image_size=int(swin["image_res"]), embed_dim=int(swin["embed_dim"]),
                      depths=tuple(int(d) for d in swin["depths"]),
                      num_heads=tuple(int(h) for h in swin["num_heads"]), window_size=int(swin["window_size"]))
        width = swin.get("vision_width")
    except (KeyError, TypeError) as e:
        raise _missing(e) from None
    features = kwargs["embed_dim"] * 2 ** (len(kwargs["depths"]) - 1)
    if width is not None and int(width) != features:
        raise ValueError(f"swin_config vision_width {width} is not the Swin output width embed_dim * "
                         f"2^(stages-1) = {features}")
    return kwargs


def head_kwargs(q2l: Mapping) -> dict:
    """The tagging head's ``decoder_*`` keyword arguments from a BERT (q2l) config."""
    try:
        return dict(decoder_hidden_size=int(q2l["hidden_size"]), decoder_layers=int(q2l["num_hidden_layers"]),
                    decoder_heads=int(q2l["num_attention_heads"]),
                    decoder_intermediate_size=int(q2l["intermediate_size"]),
                    decoder_layer_norm_eps=float(q2l.get("layer_norm_eps", 1e-12)),
                    decoder_hidden_act=str(q2l.get("hidden_act", "gelu")))
    except (KeyError, TypeError) as e:
        raise _missing(e) from None
