# `openvocab embed-tags tags.json --out tags.safetensors`: CLIP ViT-B/16 text embeddings of every
# description (L2-normalised, class-major), loaded by the tagger as open-set tags:
#   --cfg-options tagger.openset=tags.safetensors
custom_imports = dict(imports=['tagging'], allow_failed_imports=False)

embedder = dict(
    type='CLIPDescriptionEmbedder',
    encoder=dict(type='CLIPTextEncoder', variant='vit_b_16', checkpoint='clip_vit_b_16'),
    descriptions_per_tag=None,   # None: as many as the first tag has (51 for RAM++ files)
)
