# Fine-tune the TINY, randomly initialised Grounding DINO on a synthetic shapes set (tests and demos).
# Make the data first:
#   python -m openvocab.training.synthetic data/shapes/train --num-images 200 --classes circle square triangle --max-objects 2
#   python -m openvocab.training.synthetic data/shapes/val --num-images 50 --seed 1 --classes circle square triangle --max-objects 2
#   openvocab train train/detector_tiny --work-dir work_dirs/detector_tiny
# Other data:  --cfg-options train_dataloader.dataset.ann_file=A.json val_dataloader.dataset.ann_file=B.json
#              model.classes="[a,b,c]" val_evaluator.classes="[a,b,c]"
# work_dir/exported.safetensors then loads in the detector stage (same resize):
#   dict(type='GroundingDINODetector', variant='tiny', checkpoint='work_dirs/detector_tiny/exported.safetensors',
#        resize=(64, 64))
custom_imports = dict(imports=['grounding', 'openvocab.training.detection_metric'], allow_failed_imports=False)

classes = ['circle', 'square', 'triangle']
max_iters = 600

model = dict(
    type='GroundingDINOTrainModel', variant='tiny', checkpoint=None, vocab=None, classes=classes, seed=0,
    resize=(64, 64),  # (short side, max size): the preprocessing the detector stage runs with
    prior_prob=0.01,  # random init: contrastive logits start at logit(0.01) (see init_logit_prior)
    loss_cls=2.0, loss_bbox=5.0, loss_giou=2.0,
    data_preprocessor=dict(type='TrainSamplePassThrough'))

train_dataloader = dict(
    batch_size=8, num_workers=0,
    dataset=dict(type='CocoTrainDataset', ann_file='data/shapes/train/coco.json'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'))
val_dataloader = dict(
    batch_size=10, num_workers=0,
    dataset=dict(type='CocoTrainDataset', ann_file='data/shapes/val/coco.json'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'))
val_evaluator = dict(type='CocoBoxAPMetric', classes=classes)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=5e-4, weight_decay=1e-4),
                     clip_grad=dict(max_norm=0.1, norm_type=2))
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=200, by_epoch=False, max_keep_ckpts=1),
    logger=dict(type='LoggerHook', interval=50))
randomness = dict(seed=0)
log_level = 'WARNING'
