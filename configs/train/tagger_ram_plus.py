# Fine-tune the official RAM++ Swin-L 384 (`ram_plus_swin_large_14m`) with a frozen backbone on your tags.
# Needs a GPU and the official checkpoint (see README "Weights").
#   openvocab train configs/train/tagger_ram_plus.py --work-dir work/ram_plus_ft \
#     --cfg-options train_dataloader.dataset.ann_file=data/train/labels.jsonl \
#                   val_dataloader.dataset.ann_file=data/val/labels.jsonl
# Data: JSONL {"file", "tags", "negative_tags"?} (e.g. `openvocab parse-captions` output); for COCO files use
#   train_dataloader.dataset.type=CocoTrainDataset (image `tags` field plus box categories).
# Tags: tag_list=None trains the 4585 official tags with their official description embeddings. New
# open-set tags: describe and embed them (`openvocab describe-tags`, `openvocab embed-tags --out new.safetensors`)
# and set model.label_embed=new.safetensors: the trained tags are the official ones followed by the new ones
# (or give model.tag_list=[...] to train only the listed tags; each comes from the file, else the checkpoint).
# Inference with the result: RAMPlusTagger(checkpoint='work/ram_plus_ft/exported.safetensors') (the trained
#   tags come from the file's metadata; pass class_thresholds=... to keep per-class thresholds).
custom_imports = dict(imports=['tagging', 'openvocab.training.metrics'], allow_failed_imports=False)

model = dict(
    type='RAMPlusTrainModel',
    variant='swin_l_384',
    checkpoint='ram_plus_swin_large_14m',
    tag_list=None,                # None: the checkpoint's tags (+ new tags of an open-set label_embed file)
    label_embed='checkpoint',     # or an `openvocab embed-tags` file (frozen description embeddings)
    freeze_backbone=True,
    gamma_neg=7.0, gamma_pos=0.0, clip=0.05,  # RAM++'s asymmetric loss
    data_preprocessor=dict(type='TrainSamplePassThrough'),
)

train_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=True,
    dataset=dict(type='JsonlTagDataset', ann_file='data/train/labels.jsonl'),
    sampler=dict(type='InfiniteSampler', shuffle=True),  # DefaultSampler sleeps 2 s per epoch
)
val_dataloader = dict(
    batch_size=16, num_workers=4,
    dataset=dict(type='JsonlTagDataset', ann_file='data/val/labels.jsonl'),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='TagMAPMetric')

train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
val_cfg = dict(type='ValLoop')
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16',
                     optimizer=dict(type='AdamW', lr=5e-6, weight_decay=0.05), clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
                   dict(type='CosineAnnealingLR', by_epoch=False, begin=500, end=20000, eta_min=1e-7)]

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=2000, by_epoch=False, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=50),
)
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
