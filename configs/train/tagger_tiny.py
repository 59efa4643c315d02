# Train the tiny RAM++ from a random init on a synthetic shapes set (tests and demos; ~1 min on a CPU):
#   python -m openvocab.training.synthetic data/synthetic/train --num-images 200 --size 64 64 --class-colours
#   python -m openvocab.training.synthetic data/synthetic/val --num-images 50 --size 64 64 --seed 1 --class-colours
#   openvocab train configs/train/tagger_tiny.py --work-dir work/tagger_tiny
# (held-out tag mAP ~0.7-0.8 after the 300 iterations, ~0.35 untrained; without --class-colours, i.e. shape
# identity alone, a from-scratch tiny Swin needs far more than 300 iterations.)
# Other data: --cfg-options train_dataloader.dataset.ann_file=DIR/tags.jsonl val_dataloader.dataset.ann_file=...
# The result, work_dir/exported.safetensors, loads in the inference tagger:
#   tagger=dict(type='RAMPlusTagger', variant='tiny', checkpoint='work/tagger_tiny/exported.safetensors')
#   (its metadata holds the trained tags and the model's sizes)
custom_imports = dict(imports=['tagging', 'openvocab.training.metrics'], allow_failed_imports=False)

classes = ('circle', 'square', 'triangle', 'star', 'cross', 'ring')  # openvocab.training.synthetic.SHAPES

model = dict(
    type='RAMPlusTrainModel',
    variant='tiny',
    model_kwargs=dict(image_size=64, window_size=4, descriptions_per_tag=8),
    checkpoint=None,              # random init
    tag_list=classes,
    label_embed='random',         # frozen random description embeddings, one set per tag
    freeze_backbone=False,
    gamma_neg=7.0, gamma_pos=0.0, clip=0.05,   # RAM++'s asymmetric loss
    # the random init rescaled so that it trains (see tagging.ram_plus.train.scratch_init)
    scratch_query_gain=8.0, scratch_value_gain=0.1,
    data_preprocessor=dict(type='TrainSamplePassThrough'),
)

train_dataloader = dict(
    batch_size=16, num_workers=0,
    dataset=dict(type='JsonlTagDataset', ann_file='data/synthetic/train/tags.jsonl'),
    sampler=dict(type='InfiniteSampler', shuffle=True),  # DefaultSampler sleeps 2 s per epoch
)
val_dataloader = dict(
    batch_size=25, num_workers=0,
    dataset=dict(type='JsonlTagDataset', ann_file='data/synthetic/val/tags.jsonl'),
    sampler=dict(type='DefaultSampler', shuffle=False),
)
val_evaluator = dict(type='TagMAPMetric', per_tag=True)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=300, val_interval=300)
val_cfg = dict(type='ValLoop')
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05), clip_grad=dict(max_norm=5.0))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
                   dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=300, eta_min=1e-5)]

default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=100, by_epoch=False, max_keep_ckpts=2),
    logger=dict(type='LoggerHook', interval=10),
)
randomness = dict(seed=0)
log_level = 'WARNING'
