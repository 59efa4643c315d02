# Label by example with OWLv2 image-guided detection (boxes): each example's box on its reference image gives OWLv2
# a query embedding, and every box of an image is scored against them. Classes named in --vocab are found by the
# same OWLv2 with text queries, in the same job (without --vocab: the examples' classes only).
#   openvocab label photos/ --out runs/ex --config examples_owlv2 --examples examples.json [--vocab "cat, dog"]
# OWL-ViT instead: detector.model=exemplar_detector.model='google/owlvit-base-patch32'.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='HFDetector', model='google/owlv2-base-patch16-ensemble', text_template='a photo of a {}',
                box_threshold=0.2, nms_iou=0.5)
exemplar_detector = dict(type='OwlExemplarDetector', model='google/owlv2-base-patch16-ensemble', box_threshold=0.5,
                         query='box', merge='max', nms_iou=0.3)
