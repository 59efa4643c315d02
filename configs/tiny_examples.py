# Label by example with TINY, RANDOMLY INITIALISED models (tiny_random.py plus an exemplar stage). Nothing is
# downloaded; the outputs are MEANINGLESS (random weights): it exists for tests and smoke runs of the whole
# examples path (both example file forms, every writer, the demo's "find all like this"), not for labeling:
#   openvocab label demo/images --out runs/ex --config tiny_examples --examples my_examples.json --vis
# The exemplar stage is prototype matching: a tiny SAM's automatic mode proposes regions (any mask head can), a
# tiny random DINOv2 embeds them, and each goes to the nearest example prototype; the tiny TAP then gives every box
# (the examples' too) its concepts and caption, the proposals keeping their SAM masks. threshold=-1.0 accepts every
# region (random embeddings have no meaningful similarity); leave it out (None) to calibrate from the examples.
_base_ = './tiny_random.py'

exemplar_detector = dict(
    type='PrototypeMatcher', threshold=-1.0, max_detections=3,
    encoder=dict(model=None, random=dict(model_type='dinov2', hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8),
                 seed=0),
    proposer=dict(kind='mask_head', mask_head=dict(type='SAMMaskHead', variant='tiny', checkpoint=None, seed=0),
                  points_per_side=4, min_score=0.0, max_area=1.0, max_proposals=16))
