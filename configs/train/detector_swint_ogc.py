# Fine-tune the official Grounding DINO Swin-T (OGC) on a COCO-format dataset, with the Swin backbone and
# the BERT text encoder frozen (the fusion encoder, decoder and heads train).
#   openvocab train train/detector_swint_ogc --work-dir work_dirs/gdino_swint \
#       --cfg-options train_dataloader.dataset.ann_file=DATA/train.json train_dataloader.dataset.img_dir=DATA/images
# Own classes: model.classes="[a,b,c]" val_evaluator.classes="[a,b,c]" (the prompt is "a . b . c .").
# work_dir/exported.safetensors then loads as
#   dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='work_dirs/gdino_swint/exported.safetensors')
custom_imports = dict(imports=['grounding', 'openvocab.training.detection_metric'], allow_failed_imports=False)

# The 80 COCO classes (one prompt of about 200 tokens, under the 256-token limit).
classes = [
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
    'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
    'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard',
    'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush']
max_iters = 20000

model = dict(
    type='GroundingDINOTrainModel', variant='swint_ogc', checkpoint='groundingdino_swint_ogc', vocab=None,
    classes=classes, shuffle_classes=True, max_negative_classes=None,
    freeze_backbone=True, freeze_text_encoder=True,
    loss_cls=1.0, loss_bbox=5.0, loss_giou=2.0, match_cls=2.0, match_bbox=5.0, match_giou=2.0,
    resize=(800, 1333), box_threshold=0.0, text_threshold=0.0, nms_iou=None, max_detections=300,
    data_preprocessor=dict(type='TrainSamplePassThrough'))

train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=True,
    dataset=dict(type='CocoTrainDataset', ann_file='data/coco/annotations/instances_train2017.json',
                 img_dir='data/coco/train2017'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='pseudo_collate'))
val_dataloader = dict(
    batch_size=2, num_workers=2,
    dataset=dict(type='CocoTrainDataset', ann_file='data/coco/annotations/instances_val2017.json',
                 img_dir='data/coco/val2017'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'))
val_evaluator = dict(type='CocoBoxAPMetric', classes=classes)

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
val_cfg = dict(type='ValLoop')
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
                     clip_grad=dict(max_norm=0.1, norm_type=2))
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=500),
                   dict(type='MultiStepLR', by_epoch=False, milestones=[15000], gamma=0.1)]
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', interval=1000, by_epoch=False, max_keep_ckpts=3),
    logger=dict(type='LoggerHook', interval=50))
randomness = dict(seed=0)
