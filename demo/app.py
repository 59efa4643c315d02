"""The openvocab web demo (Gradio): ``openvocab demo [--config C] [--port P]``.

Tab **Label**: upload an image or pick a bundled one, choose the pipeline config and its backends (device,
precision, tagger / mask head on or off), type a vocabulary or let the tagger tag, set the detector's
thresholds; see the tags (scores, open-set marked), the boxes, masks, region concepts and captions drawn on the
image, a table of regions, and download the image's COCO JSON, LabelMe JSON and YOLO labels.
Tab **Free-text grounding**: boxes (and masks) of the phrases of a sentence.
Tab **Video**: upload a short clip, choose the tracking mode, see the overlay video, download MOT and COCO video.
Tab **Find all like this** (label by example, :mod:`.examples_tab`): boxes drawn on an image find every similar
instance in it and in more uploaded images.
The page's work is in :mod:`.logic`; this module only lays it out. The request handlers take data only: a config
by name among the page's own (:class:`.logic.ConfigMenu`), an image as an upload Gradio received (images only).
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo runs offline

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from . import examples_tab, logic  # noqa: E402
from . import video as video_tab  # noqa: E402

DEFAULT_CONFIG = "full_pipeline"
PRECISIONS = list(logic.PRECISIONS)
#: what the upload fields accept (Gradio checks it on upload; the handlers read pixels only)
IMAGE_TYPES = ["image"]
#: what the video upload field accepts (the job reads the clip as a video, whatever its name says)
VIDEO_TYPES = ["video"]
#: fonts the machine has: no web-font download (the page works offline)
THEME_FONTS = dict(font=["DejaVu Sans", "Helvetica", "Arial", "sans-serif"],
                   font_mono=["DejaVu Sans Mono", "monospace"])


def _devices() -> list[str]:
    import torch

    return ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]


def _table(rows: list, headers: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=headers)


def _config_widgets(menu: logic.ConfigMenu, name: str):
    """Banner, stage choices, thresholds and vocabulary for config ``name`` (one of ``menu``'s)."""
    try:
        info = logic.config_info(menu.path(name))
    except Exception as e:  # noqa: BLE001 - an unknown name, or a broken config file: say so on the page
        return (gr.update(value=f"**Error:** {e}", visible=True), gr.update(choices=[], value=[]),
                gr.update(visible=False), gr.update(visible=False), gr.update())
    stages = list(logic.stage_choices(info))
    has_det = "detector" in info.stages
    return (gr.update(value=info.banner, visible=bool(info.banner)), gr.update(choices=stages, value=stages),
            gr.update(value=info.box_threshold if info.box_threshold is not None else 0.35,
                      visible=has_det and info.box_threshold is not None),
            gr.update(value=info.text_threshold if info.text_threshold is not None else 0.25,
                      visible=has_det and info.text_threshold is not None),
            gr.update(value=", ".join(info.vocabulary)))


def build_app(config: str = DEFAULT_CONFIG, *, device: Optional[str] = None) -> gr.Blocks:
    """The page, with ``config`` chosen (a name under ``configs/`` or a file)."""
    cache = logic.LabelerCache()
    work = Path(tempfile.mkdtemp(prefix="openvocab-demo-"))  # each run's download files; removed at exit
    atexit.register(shutil.rmtree, work, True)
    menu = logic.ConfigMenu(config)
    choices = menu.names
    devices = _devices()
    examples = logic.demo_images()
    #: where an image a handler reads may lie: Gradio's upload folder, and the bundled pictures
    upload_roots = [gr.utils.get_upload_folder(), str(Path(examples[0]).parent) if examples else str(work)]
    try:
        info = logic.config_info(menu.path(config))
    except Exception:  # noqa: BLE001 - a broken config: the page says so when it loads
        info = logic.ConfigInfo(stages=(), random_stages=(), box_threshold=None, text_threshold=None)
    stages = list(logic.stage_choices(info))
    with gr.Blocks(title="openvocab demo", analytics_enabled=False) as app:
        gr.Markdown("# openvocab\nOpen-vocabulary tagging, grounding and segmentation: "
                    "RAM++ → boxable filter → Grounding DINO → TAP/SAM.")
        banner = gr.Markdown(info.banner, visible=bool(info.banner), elem_id="ov-banner")
        with gr.Accordion("Pipeline", open=True):
            with gr.Row():
                cfg_box = gr.Dropdown(choices, value=config, label="config", elem_id="ov-config")
                dev_box = gr.Dropdown(devices, value=device if device in devices else devices[0], label="device")
                prec_box = gr.Dropdown(PRECISIONS, value="fp32", label="precision")
                stage_box = gr.CheckboxGroup(stages, value=stages, label="stages", elem_id="ov-stages")
            with gr.Row():
                box_th = gr.Slider(0.0, 1.0, step=0.01, label="box threshold", elem_id="ov-box-threshold",
                                   value=info.box_threshold or 0.0, visible=info.box_threshold is not None)
                text_th = gr.Slider(0.0, 1.0, step=0.01, label="text threshold", elem_id="ov-text-threshold",
                                    value=info.text_threshold or 0.0, visible=info.text_threshold is not None)

        def settings(cfg, dev, prec, stages, box, text) -> logic.Settings:
            if dev not in devices:
                raise logic.UserError(f"device must be one of {', '.join(devices)}")
            if not isinstance(stages, (list, tuple)):
                raise logic.UserError("stages must be a list")
            return logic.Settings(config=menu.path(cfg), device=dev, precision=prec, stages=tuple(stages),
                                  box_threshold=box, text_threshold=text)

        def checked(file, cfg, dev, prec, stages, box, text) -> tuple[str, logic.Settings]:
            return logic.upload_path(file, roots=upload_roots), settings(cfg, dev, prec, stages, box, text)

        pipeline_inputs = [cfg_box, dev_box, prec_box, stage_box, box_th, text_th]
        with gr.Tab("Label", elem_id="ov-tab-label"):
            with gr.Row():
                with gr.Column(scale=1):
                    upload = gr.File(label="image (upload)", type="filepath", file_types=IMAGE_TYPES,
                                     elem_id="ov-upload")
                    gr.Examples([[p] for p in examples], inputs=[upload], label="or pick a bundled image")
                    vocab = gr.Textbox(", ".join(info.vocabulary), label="vocabulary (empty: the tagger tags)",
                                       placeholder="cat, dog, fire hydrant", elem_id="ov-vocab")
                    run = gr.Button("Label", variant="primary", elem_id="ov-run")
                    status = gr.Markdown(elem_id="ov-status")
                with gr.Column(scale=2):
                    result = gr.Image(label="result", type="pil", format="png", interactive=False, elem_id="ov-result")
                    with gr.Row():
                        dl_coco = gr.DownloadButton("COCO JSON", visible=False, elem_id="ov-dl-coco")
                        dl_labelme = gr.DownloadButton("LabelMe JSON", visible=False, elem_id="ov-dl-labelme")
                        dl_yolo = gr.DownloadButton("YOLO (zip)", visible=False, elem_id="ov-dl-yolo")
            tags = gr.Dataframe(headers=logic.TAG_HEADERS, label="tags (★ open-set / user)", interactive=False,
                                elem_id="ov-tags")
            regions = gr.Dataframe(headers=logic.REGION_HEADERS, label="regions", interactive=False,
                                   elem_id="ov-regions", wrap=True)

        def do_label(file, vocabulary, cfg, dev, prec, stages, box, text, progress=gr.Progress()):
            try:
                path, chosen = checked(file, cfg, dev, prec, stages, box, text)
            except logic.UserError as e:
                out = logic.LabelOutput(status=f"**Error:** {e}")
            else:
                out = logic.run_label(cache, path, chosen, vocabulary or "",
                                      progress=lambda f, what: progress(f, desc=what), out_root=work)
            buttons = [gr.update(value=str(f), visible=True) if f else gr.update(visible=False) for f in out.files]
            return (out.overlay, _table(out.tags, logic.TAG_HEADERS), _table(out.regions, logic.REGION_HEADERS),
                    *buttons, out.status)

        run.click(do_label, [upload, vocab, *pipeline_inputs],
                  [result, tags, regions, dl_coco, dl_labelme, dl_yolo, status],
                  concurrency_limit=1, concurrency_id="model")

        with gr.Tab("Free-text grounding", elem_id="ov-tab-ground"):
            with gr.Row():
                with gr.Column(scale=1):
                    g_upload = gr.File(label="image (upload)", type="filepath", file_types=IMAGE_TYPES,
                                       elem_id="ov-g-upload")
                    gr.Examples([[p] for p in examples], inputs=[g_upload], label="or pick a bundled image")
                    g_text = gr.Textbox(label="text", placeholder="the man in a red shirt", elem_id="ov-g-text")
                    g_run = gr.Button("Find", variant="primary", elem_id="ov-g-run")
                    g_status = gr.Markdown(elem_id="ov-g-status")
                with gr.Column(scale=2):
                    g_result = gr.Image(label="result", type="pil", format="png", interactive=False,
                                        elem_id="ov-g-result")
            g_rows = gr.Dataframe(headers=logic.GROUNDING_HEADERS, label="boxes", interactive=False,
                                  elem_id="ov-g-regions")

        def do_ground(file, text, cfg, dev, prec, stages, box, txt, progress=gr.Progress()):
            try:
                path, chosen = checked(file, cfg, dev, prec, stages, box, txt)
            except logic.UserError as e:
                return None, _table([], logic.GROUNDING_HEADERS), f"**Error:** {e}"
            overlay, rows, message = logic.run_grounding(cache, path, text or "", chosen,
                                                         progress=lambda f, what: progress(f, desc=what))
            return overlay, _table(rows, logic.GROUNDING_HEADERS), message

        g_run.click(do_ground, [g_upload, g_text, *pipeline_inputs], [g_result, g_rows, g_status],
                    concurrency_limit=1, concurrency_id="model")

        with gr.Tab("Click to segment", elem_id="ov-tab-prompt"):
            gr.Markdown("The config's mask head (SAM, TAP, PSALM...) segments what you point at: click on the "
                        "image for a point; in box mode, two clicks are the corners of a box.")
            with gr.Row():
                with gr.Column(scale=1):
                    p_image = gr.Image(label="image (upload, then click on it)", type="filepath", sources=["upload"],
                                       elem_id="ov-p-image")
                    p_mode = gr.Radio(["point", "box"], value="point", label="click adds", elem_id="ov-p-mode")
                    p_prompts = gr.State([])
                    p_list = gr.Markdown("no prompt yet", elem_id="ov-p-list")
                    with gr.Row():
                        p_run = gr.Button("Segment", variant="primary", elem_id="ov-p-run")
                        p_clear = gr.Button("Clear prompts", elem_id="ov-p-clear")
                    p_status = gr.Markdown(elem_id="ov-p-status")
                with gr.Column(scale=2):
                    p_result = gr.Image(label="masks", type="pil", format="png", interactive=False,
                                        elem_id="ov-p-result")
            p_rows = gr.Dataframe(headers=logic.REGION_HEADERS, label="masks", interactive=False, elem_id="ov-p-regions")

        def describe(prompts) -> str:
            shown = [f"{kind} ({', '.join(f'{v:.0f}' for v in values)})" for kind, *values in prompts]
            return "; ".join(shown) if shown else "no prompt yet"

        def on_click(prompts, mode, evt: gr.SelectData):
            try:
                x, y = evt.index
                prompts = logic.add_click(prompts, mode, x, y)
            except (logic.UserError, TypeError, ValueError) as e:
                return prompts, f"**Error:** {e}"
            return prompts, describe(prompts)

        def do_prompts(file, prompts, cfg, dev, prec, stages, box, txt):
            try:
                path, chosen = checked(file, cfg, dev, prec, stages, box, txt)
            except logic.UserError as e:
                return None, _table([], logic.REGION_HEADERS), f"**Error:** {e}"
            overlay, rows, message = logic.run_prompts(cache, path, chosen, prompts)
            return overlay, _table(rows, logic.REGION_HEADERS), message

        p_image.select(on_click, [p_prompts, p_mode], [p_prompts, p_list])
        p_image.change(lambda _: ([], "no prompt yet"), [p_image], [p_prompts, p_list])
        p_clear.click(lambda: ([], "no prompt yet"), None, [p_prompts, p_list])
        p_run.click(do_prompts, [p_image, p_prompts, *pipeline_inputs], [p_result, p_rows, p_status],
                    concurrency_limit=1, concurrency_id="model")

        with gr.Tab("Video", elem_id="ov-tab-video"):
            with gr.Row():
                with gr.Column(scale=1):
                    v_upload = gr.File(label="video clip (upload)", type="filepath", file_types=VIDEO_TYPES,
                                       elem_id="ov-v-upload")
                    v_mode = gr.Radio(list(video_tab.MODES), value="config", label="tracking (config: its own, "
                                      "else SAM 2 with a mask head, ByteTrack without)", elem_id="ov-v-mode")
                    v_fps = gr.Number(0, label=f"frames per second (0: every frame; at most {video_tab.MAX_FRAMES} "
                                      "frames are labeled)", minimum=0, maximum=video_tab.MAX_FPS, elem_id="ov-v-fps")
                    v_vocab = gr.Textbox(", ".join(info.vocabulary), label="vocabulary (empty: the tagger tags)",
                                         elem_id="ov-v-vocab")
                    v_run = gr.Button("Label video", variant="primary", elem_id="ov-v-run")
                    v_status = gr.Markdown(elem_id="ov-v-status")
                with gr.Column(scale=2):
                    v_result = gr.Video(label="overlay (masks, boxes, track IDs, tags)", interactive=False,
                                        elem_id="ov-v-result")
                    with gr.Row():
                        dl_mot = gr.DownloadButton("MOT (zip)", visible=False, elem_id="ov-dl-mot")
                        dl_cocov = gr.DownloadButton("COCO video JSON", visible=False, elem_id="ov-dl-coco-video")

        def do_video(file, mode, fps, vocabulary, cfg, dev, prec, stages, box, text, progress=gr.Progress()):
            try:
                path, chosen = checked(file, cfg, dev, prec, stages, box, text)
            except logic.UserError as e:
                out = video_tab.VideoOutput(status=f"**Error:** {e}")
            else:
                out = video_tab.run_video(cache, path, chosen, mode, fps, vocabulary or "",
                                          progress=lambda f, what: progress(f, desc=what), out_root=work)
            buttons = [gr.update(value=str(f), visible=True) if f else gr.update(visible=False) for f in out.files]
            return out.overlay, *buttons, out.status

        v_run.click(do_video, [v_upload, v_mode, v_fps, v_vocab, *pipeline_inputs],
                    [v_result, dl_mot, dl_cocov, v_status], concurrency_limit=1, concurrency_id="model")

        examples_tab.build_tab(settings=settings, upload_roots=upload_roots, work=work, pictures=examples,  # by example
                               pipeline_inputs=pipeline_inputs, image_types=IMAGE_TYPES)

        config_outputs = [banner, stage_box, box_th, text_th, vocab]

        def config_widgets(name):
            return _config_widgets(menu, name)

        cfg_box.change(config_widgets, [cfg_box], config_outputs)
        if not info.stages:
            app.load(config_widgets, [cfg_box], config_outputs)  # shows the config's error
    return app


def main(*, config: str = DEFAULT_CONFIG, host: str = "127.0.0.1", port: int = 7860,
         device: Optional[str] = None) -> int:
    """Serve the page until Ctrl-C."""
    app = build_app(config, device=device)
    app.queue(default_concurrency_limit=1).launch(server_name=host, server_port=port, theme=gr.themes.Default(**THEME_FONTS),
                                                  footer_links=["gradio"], max_file_size="200mb", inbrowser=False,
                                                  share=False, ssr_mode=False)
    return 0
