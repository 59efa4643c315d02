"""The demo's **Find all like this** tab (label by example): its layout and handlers; the work is in
:mod:`.examples_logic`. Upload or pick an image, click two opposite corners to draw a box, label it (or mark it "not
like this"), draw more, add more images to search (several uploads; a folder's files), and find every instance
like the boxes; the results are drawn, listed, and downloadable as one COCO JSON."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import gradio as gr
import pandas as pd

from . import examples_logic as ex
from . import logic


def build_tab(*, settings: Callable[..., logic.Settings], upload_roots: Sequence[str], work: Path,
              pictures: Sequence[str], pipeline_inputs: list, image_types: list) -> None:
    """The tab, inside the page's ``gr.Blocks``: ``settings(*pipeline_inputs)`` checks the page's pipeline choice."""
    labelers = ex.ExampleLabelers()
    with gr.Tab("Find all like this", elem_id="ov-tab-examples"):
        state = gr.State(ex.Drawing())
        with gr.Row():
            with gr.Column(scale=1):
                upload = gr.File(label="image (upload)", type="filepath", file_types=image_types,
                                 elem_id="ov-ex-upload")
                gr.Examples([[p] for p in pictures], inputs=[upload], label="or pick a bundled image")
                label = gr.Textbox("object", label="label of the next box", max_length=ex.MAX_LABEL_CHARS,
                                   elem_id="ov-ex-label")
                negative = gr.Checkbox(False, label="not like this (a negative example)", elem_id="ov-ex-negative")
                clear = gr.Button("Clear boxes", elem_id="ov-ex-clear")
                more = gr.File(label="more images to search (several uploads: a folder's files)",
                               file_count="multiple", type="filepath", file_types=image_types, elem_id="ov-ex-more")
                run = gr.Button("Find all like this", variant="primary", elem_id="ov-ex-run")
                status = gr.Markdown(elem_id="ov-ex-status")
            with gr.Column(scale=2):
                canvas = gr.Image(label="click two opposite corners of a thing to draw a box", type="pil",
                                  format="png", interactive=False, elem_id="ov-ex-canvas")
                boxes = gr.Dataframe(headers=ex.BOX_HEADERS, label="drawn boxes", interactive=False,
                                     elem_id="ov-ex-boxes")
                gallery = gr.Gallery(label="found", columns=2, elem_id="ov-ex-gallery")
                download = gr.DownloadButton("COCO JSON", visible=False, elem_id="ov-ex-dl-coco")
        found = gr.Dataframe(headers=ex.FOUND_HEADERS, label="boxes found", interactive=False, wrap=True,
                             elem_id="ov-ex-found")

        def shown(drawing: ex.Drawing, message: str):
            return drawing, drawing.picture(), pd.DataFrame(drawing.rows(), columns=ex.BOX_HEADERS), message

        def on_upload(file):
            if not file:
                return shown(ex.Drawing(), "")
            try:
                drawing = ex.open_image(logic.upload_path(file, roots=upload_roots))
            except Exception as e:  # noqa: BLE001 - an upload that is not an image: say so on the page
                return shown(ex.Drawing(), logic._fail(e))
            return shown(drawing, "Click two opposite corners of a thing to draw a box around it.")

        def on_click(drawing: ex.Drawing, text, neg, evt: gr.SelectData):
            return shown(*ex.click(drawing, evt.index, text, neg))

        def on_clear(drawing: ex.Drawing):
            return shown(ex.Drawing(file=drawing.file, image=drawing.image), "Boxes cleared.")

        def on_find(drawing: ex.Drawing, files, *choices, progress=gr.Progress()):
            try:
                chosen = settings(*choices)
                if drawing.file is None:
                    raise logic.UserError("upload an image or pick one of the examples first.")
                more_files = [logic.upload_path(f, roots=upload_roots) for f in (files or [])]
            except logic.UserError as e:
                out = ex.FindOutput(status=f"**Error:** {e}")
            else:
                out = ex.find_all(labelers, drawing, more_files, chosen,
                                  progress=lambda f, what: progress(f, desc=what), out_root=work)
            button = gr.update(value=str(out.coco), visible=True) if out.coco else gr.update(visible=False)
            return out.gallery, pd.DataFrame(out.regions, columns=ex.FOUND_HEADERS), button, out.status

        drawn = [state, canvas, boxes, status]
        upload.change(on_upload, [upload], drawn)
        canvas.select(on_click, [state, label, negative], drawn)
        clear.click(on_clear, [state], drawn)
        run.click(on_find, [state, more, *pipeline_inputs], [gallery, found, download, status],
                  concurrency_limit=1, concurrency_id="model")
