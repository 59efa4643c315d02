"""Label Studio: ``labelstudio/tasks.json`` (tasks with pre-annotations) and ``labelstudio/label_config.xml``.

Each image is one task, ``{"data": {"image": <image_url><file_name>}, "predictions": [...]}``, whose prediction
holds a ``rectanglelabels`` region per box and a ``polygonlabels`` region per mask polygon (simplified like
LabelMe's), in percent of the image size, each with its score; the labeling config lists the job's
classes in order. With Label Studio's local file serving (``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`` = the
image root), the default ``image_url`` ``/data/local-files/?d=`` makes every task find its image.

Label Studio's own COCO converter (``label-studio-sdk``) reads polygons only (our masks are RLE) and drops
scores, so this file is written here, in Label Studio's documented task format.
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional
from xml.sax.saxutils import quoteattr

from ..jsonio import dumps
from ..registry import WRITERS
from ..structures import ImageResult
from .base import Writer, atomic_open, atomic_write_text, make_dirs, plain_name
from .masks import decode_mask, mask_to_polygons


@WRITERS.register_module()
class LabelStudioWriter(Writer):
    """Writes ``<out>/<subdir>/tasks.json`` and ``label_config.xml`` (see the module docstring).

    Args:
        subdir: folder inside the output folder.
        image_url: prefix of each task's image URL (then the image's path relative to the image root).
        epsilon / max_points: polygon simplification, as :class:`~.labelme.LabelMeWriter`'s.
    """

    def __init__(self, *, subdir: str = "labelstudio", image_url: str = "/data/local-files/?d=",
                 epsilon: float = 1.0, max_points: Optional[int] = 100) -> None:
        super().__init__()
        plain_name(subdir, "subdir")
        if epsilon < 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.subdir, self.image_url = subdir, image_url
        self.epsilon, self.max_points = float(epsilon), max_points

    def task(self, result: ImageResult) -> dict:
        """The Label Studio task of one image."""
        w, h = float(result.image.width), float(result.image.height)
        dets, regions = result.detections, result.regions
        items = []
        for i in range(len(dets)):
            x1, y1, x2, y2 = (float(v) for v in dets.boxes[i])
            common = {"to_name": "image", "original_width": int(w), "original_height": int(h), "image_rotation": 0,
                      "score": float(dets.scores[i])}
            items.append({"id": f"b{i}", "type": "rectanglelabels", "from_name": "label", **common,
                          "value": {"x": 100 * x1 / w, "y": 100 * y1 / h, "width": 100 * (x2 - x1) / w,
                                    "height": 100 * (y2 - y1) / h, "rotation": 0, "rectanglelabels": [dets.labels[i]]}})
            if regions is not None:
                polys = mask_to_polygons(decode_mask(regions.masks[i]), epsilon=self.epsilon, max_points=self.max_points)
                for k, poly in enumerate(polys):
                    items.append({"id": f"m{i}-{k}", "type": "polygonlabels", "from_name": "polygon", **common,
                                  "value": {"points": [[100 * x / w, 100 * y / h] for x, y in poly],
                                            "polygonlabels": [dets.labels[i]]}})
        if result.caption is not None:  # the image's caption: a TextArea prediction
            items.append({"id": "caption", "type": "textarea", "from_name": "caption", "to_name": "image",
                          "value": {"text": [result.caption]}})
        return {"data": {"image": self.image_url + self.file_name(result)},
                "predictions": [{"model_version": "openvocab", "result": items}]}

    def finish(self, results: Callable[[], Iterable[ImageResult]]) -> None:
        root = make_dirs(self.out_dir, self.subdir)
        with atomic_open(root / "tasks.json", "w") as f:
            f.write("[")
            for k, r in enumerate(results()):
                f.write(("\n" if k == 0 else ",\n") + dumps(self.task(r)))
            f.write("\n]\n")
        labels = "".join(f"    <Label value={quoteattr(n)}/>\n" for n in self.classes_of(results))
        caption = ("  <TextArea name=\"caption\" toName=\"image\" editable=\"true\" maxSubmissions=\"1\"/>\n"
                   if any(r.caption is not None for r in results()) else "")
        atomic_write_text(root / "label_config.xml", (
            "<View>\n  <Image name=\"image\" value=\"$image\"/>\n"
            f"  <RectangleLabels name=\"label\" toName=\"image\">\n{labels}  </RectangleLabels>\n"
            f"  <PolygonLabels name=\"polygon\" toName=\"image\">\n{labels}  </PolygonLabels>\n{caption}</View>\n"))
        super().finish(results)
