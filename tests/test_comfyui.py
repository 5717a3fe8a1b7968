"""The ComfyUI node pack (comfyui/), called the way ComfyUI calls it, without ComfyUI: its modules are stand-ins
(tests/comfy_stubs.py) and the pack is imported as ComfyUI imports a custom_nodes folder. Tensors are in ComfyUI's
layouts: IMAGE [batch, height, width, 3] float32 in [0, 1], MASK [batch, height, width]."""

import asyncio
import gc
import importlib.util
import inspect
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from loopanimate.engines.saliency import salient_mask
from loopanimate.errors import LoopAnimateError
from loopanimate.export import read_video
from tests import comfy_stubs

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "comfyui"
PIXEL = 1 / 255  # frames pass through 8 bits: one grey level is the tolerance against a float input
FRAMES = 8  # short loops keep each test well under a second
# Each node's inputs (id -> ComfyUI type, in order), its output types, and its optional inputs.
SCHEMAS = {
    "LoopAnimateLoadModel": ({"model_dir": "STRING", "device": "STRING", "dtype": "COMBO"}, ["LOOPANIMATE_MODEL"], []),
    "LoopAnimateSalientMask": ({"image": "IMAGE"}, ["MASK"], []),
    "LoopAnimateMotionLoop": (
        {"image": "IMAGE", "mask": "MASK", "prompt": "STRING", "frames": "INT", "seed": "INT", "motion": "FLOAT",
         "size": "STRING", "crop": "BOOLEAN"},
        ["IMAGE"],
        ["mask"],
    ),
    "LoopAnimateDiffusionLoop": (
        {"model": "LOOPANIMATE_MODEL", "image": "IMAGE", "mask": "MASK", "prompt": "STRING", "frames": "INT",
         "seed": "INT", "motion": "FLOAT", "size": "STRING", "crop": "BOOLEAN", "negative_prompt": "STRING",
         "steps": "INT", "guidance": "FLOAT", "image_guidance": "FLOAT", "loop_closure": "COMBO"},
        ["IMAGE"],
        ["mask"],
    ),
    "LoopAnimateSaveLoop": (
        {"frames": "IMAGE", "filename_prefix": "STRING", "format": "COMBO", "fps": "FLOAT", "closed_loop": "BOOLEAN"},
        [],
        [],
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def stubbed(tmp_path_factory):
    """ComfyUI's modules as stand-ins, and the pack imported as ComfyUI imports a custom_nodes folder."""
    base = tmp_path_factory.mktemp("comfyui")
    with pytest.MonkeyPatch.context() as patch:
        comfy = comfy_stubs.install(patch, base)
        spec = importlib.util.spec_from_file_location(
            "loopanimate_comfyui", PACK / "__init__.py", submodule_search_locations=[str(PACK)]
        )
        pack = importlib.util.module_from_spec(spec)
        patch.setitem(sys.modules, spec.name, pack)
        spec.loader.exec_module(pack)
        patch.setitem(sys.modules, f"{spec.name}.nodes", pack.nodes)  # so the undo removes it too
        comfy.pack, comfy.nodes, comfy.output = pack, pack.nodes, base / "output"
        yield comfy


@pytest.fixture
def comfy(stubbed):
    """The stand-ins with no progress bar, no hook and Cancel not pressed."""
    stubbed.utils.bars.clear()
    stubbed.utils.PROGRESS_BAR_HOOK = None
    stubbed.model_management.interrupt_processing = False
    return stubbed


def comfy_image(picture: PIL.Image.Image) -> torch.Tensor:
    """A picture as ComfyUI's IMAGE of one."""
    return torch.from_numpy(np.array(picture.convert("RGB"))).float()[None] / 255.0


def run(node, **given):
    """Call a node as ComfyUI does, by input id: every widget at its schema's default unless given."""
    defaults = {spec.id: spec.options["default"] for spec in node.define_schema().inputs if "default" in spec.options}
    return node.execute(**{**defaults, **given})


def cancel_at(comfy, done: int) -> None:
    """Press ComfyUI's Cancel when the progress bar reaches `done`."""

    def hook(value, total, preview, node_id=None):
        if value == done:
            comfy.model_management.interrupt_current_processing()

    comfy.utils.PROGRESS_BAR_HOOK = hook


def box_mask(height: int, width: int, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """A MASK of one picture: white (may move) inside the box."""
    mask = torch.zeros(1, height, width)
    mask[0, top:bottom, left:right] = 1.0
    return mask


def closed_loop(count: int = 6) -> torch.Tensor:
    """Frames of a gradient sliding sideways whose last frame repeats the first, as an IMAGE [F, 32, 48, 3]."""
    x = torch.linspace(0, 1, 48)
    frames = torch.stack([torch.stack([(x + i / (count - 1)) % 1, x.flip(0), 0.5 + 0 * x], -1) for i in range(count)])
    return frames[:, None].expand(count, 32, 48, 3).contiguous()


def motion_loop(comfy, image: PIL.Image.Image, **given) -> torch.Tensor:
    return run(comfy.nodes.MotionLoop, image=comfy_image(image), prompt="the box sways", frames=FRAMES, **given)[0]


@pytest.fixture
def model(comfy, tiny_model_dir):
    return run(comfy.nodes.LoadModel, model_dir=tiny_model_dir, device="cpu")[0]


def diffusion_loop(comfy, model, image: PIL.Image.Image, **given) -> torch.Tensor:
    inputs = {"prompt": "the box sways", "frames": FRAMES, "steps": 2, "size": "64", **given}
    return run(comfy.nodes.DiffusionLoop, model=model, image=comfy_image(image), **inputs)[0]


def saved(comfy, output) -> Path:
    entry = output.ui["images"][0]
    return comfy.output / entry["subfolder"] / entry["filename"]


# Schemas and registration


def test_the_entry_point_lists_every_node(comfy):
    extension = asyncio.run(comfy.pack.comfy_entrypoint())
    assert isinstance(extension, comfy_stubs.ComfyExtension)
    nodes = asyncio.run(extension.get_node_list())
    assert [node.define_schema().node_id for node in nodes] == list(SCHEMAS)


@pytest.mark.parametrize("node_id", SCHEMAS)
def test_each_schema_has_its_inputs_and_outputs(comfy, node_id):
    schema = next(node for node in comfy.nodes.NODES if node.define_schema().node_id == node_id).define_schema()
    schema.validate()
    inputs, outputs, optional = SCHEMAS[node_id]
    assert [(spec.id, spec.io_type) for spec in schema.inputs] == list(inputs.items())
    assert [output.io_type for output in schema.outputs] == outputs
    assert [spec.id for spec in schema.inputs if spec.optional] == optional
    assert schema.is_output_node == (node_id == "LoopAnimateSaveLoop")


@pytest.mark.parametrize("node_id", SCHEMAS)
def test_execute_takes_the_schema_inputs_by_id(comfy, node_id):
    node = next(node for node in comfy.nodes.NODES if node.define_schema().node_id == node_id)
    assert set(inspect.signature(node.execute).parameters) == set(SCHEMAS[node_id][0])


# Salient mask


def test_salient_mask_gives_a_comfy_mask_per_picture(comfy, image):
    batch = torch.cat([comfy_image(image), comfy_image(image.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT))])
    mask = run(comfy.nodes.SalientMask, image=batch)[0]
    assert mask.shape == (2, 96, 128) and mask.dtype == torch.float32
    assert mask.min() >= 0.0 and mask.max() <= 1.0


def test_salient_mask_is_the_librarys(comfy, image):
    mask = run(comfy.nodes.SalientMask, image=comfy_image(image))[0]
    torch.testing.assert_close(mask[0], torch.from_numpy(salient_mask(np.asarray(image))).float(), atol=0, rtol=0)


def test_salient_mask_counts_pictures_on_the_progress_bar(comfy, image):
    run(comfy.nodes.SalientMask, image=torch.cat([comfy_image(image)] * 2))
    assert comfy.utils.bars[-1].updates == [(1, 2), (2, 2)]


# Motion loop


def test_motion_loop_gives_comfy_frames(comfy, image):
    frames = motion_loop(comfy, image)
    assert frames.shape == (FRAMES, 96, 128, 3) and frames.dtype == torch.float32 and frames.device.type == "cpu"
    assert frames.min() >= 0.0 and frames.max() <= 1.0


def test_motion_loop_starts_on_the_picture(comfy, image):
    torch.testing.assert_close(motion_loop(comfy, image)[0], comfy_image(image)[0], atol=PIXEL, rtol=0)


def test_motion_loop_closes(comfy, image):
    frames = motion_loop(comfy, image)
    assert not torch.equal(frames[FRAMES // 2], frames[0])  # it moves, so a closed loop is no accident
    torch.testing.assert_close(frames[-1], frames[0], atol=0, rtol=0)


def test_a_mask_keeps_the_motion_loops_background_still(comfy, image):
    mask = box_mask(96, 128, 25, 75, 35, 95)
    frames = motion_loop(comfy, image, mask=mask)
    outside = mask[0] == 0
    assert not torch.equal(frames[FRAMES // 2][~outside], frames[0][~outside])  # the object moves
    torch.testing.assert_close(frames[:, outside], frames[:1, outside].expand_as(frames[:, outside]), atol=0, rtol=0)


def test_motion_loop_takes_a_size(comfy, image):
    assert motion_loop(comfy, image, size="64").shape == (FRAMES, 48, 64, 3)  # 128x96 inside 64x64


def test_motion_loop_counts_frames_on_the_progress_bar(comfy, image):
    motion_loop(comfy, image)
    assert comfy.utils.bars[-1].updates == [(done, FRAMES) for done in range(1, FRAMES + 1)]


def test_cancel_stops_the_motion_loop(comfy, image):
    cancel_at(comfy, 2)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        motion_loop(comfy, image)
    assert comfy.utils.bars[-1].updates[-1] == (2, FRAMES)


# Diffusion loop (a tiny random model)


def test_model_loader_looks_in_the_models_folder(comfy, tiny_model_dir):
    folder = Path(comfy.folder_paths.models_dir, "loopanimate")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny").symlink_to(tiny_model_dir)
    model = run(comfy.nodes.LoadModel, model_dir="tiny")[0]
    assert model.path == str(folder / "tiny") and model.device is None and model.dtype is None


def test_diffusion_loop_gives_comfy_frames(comfy, model, image):
    frames = diffusion_loop(comfy, model, image)
    assert frames.shape == (FRAMES, 48, 64, 3) and frames.dtype == torch.float32  # 128x96 inside 64x64
    assert frames.min() >= 0.0 and frames.max() <= 1.0


def test_diffusion_loop_closes(comfy, model, image):
    frames = diffusion_loop(comfy, model, image)
    assert not torch.equal(frames[FRAMES // 2], frames[0])
    torch.testing.assert_close(frames[-1], frames[0], atol=0, rtol=0)


def test_a_mask_keeps_the_diffusion_loops_background_still(comfy, model, image):
    frames = diffusion_loop(comfy, model, image, mask=box_mask(96, 128, 32, 64, 40, 88))
    still = torch.ones(48, 64, dtype=torch.bool)
    still[12:36, 16:48] = False  # the box at half size (16:32, 20:44), with a margin for the resized mask's edge
    assert not torch.equal(frames[FRAMES // 2][~still], frames[0][~still])
    torch.testing.assert_close(frames[:, still], frames[:1, still].expand_as(frames[:, still]), atol=0, rtol=0)


def test_diffusion_loop_counts_steps_on_the_progress_bar(comfy, model, image):
    diffusion_loop(comfy, model, image)
    assert comfy.utils.bars[-1].updates == [(1, 2), (2, 2)]


def test_cancel_stops_the_diffusion_loop(comfy, model, image):
    cancel_at(comfy, 1)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        diffusion_loop(comfy, model, image, steps=3)
    assert comfy.utils.bars[-1].updates == [(1, 3)]


def test_the_loops_run_under_comfys_inference_mode(comfy, tiny_model_dir, tmp_path, image):
    """ComfyUI runs every node under torch.inference_mode()."""
    (tmp_path / "tiny").symlink_to(tiny_model_dir)  # a pipeline of its own in the library's cache, used only here
    with torch.inference_mode():
        model = run(comfy.nodes.LoadModel, model_dir=str(tmp_path / "tiny"), device="cpu")[0]
        made = diffusion_loop(comfy, model, image), motion_loop(comfy, image)
    assert [frames.shape for frames in made] == [(FRAMES, 48, 64, 3), (FRAMES, 96, 128, 3)]


# Save loop


@pytest.mark.parametrize("fmt", ["mp4", "webp", "gif"])
def test_save_loop_leaves_out_the_seam_frame(comfy, fmt):
    output = run(comfy.nodes.SaveLoop, frames=closed_loop(6), format=fmt, filename_prefix=f"seam/{fmt}")
    frames, _ = read_video(saved(comfy, output))
    assert len(frames) == 5


def test_save_loop_keeps_every_frame_of_an_open_loop(comfy):
    output = run(comfy.nodes.SaveLoop, frames=closed_loop(6), format="webp", filename_prefix="open", closed_loop=False)
    assert len(read_video(saved(comfy, output))[0]) == 6


def test_save_loop_shows_the_file_in_comfy(comfy):
    output = run(comfy.nodes.SaveLoop, frames=closed_loop(), format="webp", filename_prefix="preview/loop")
    assert output.ui == {
        "images": [{"filename": "loop_00001_.webp", "subfolder": "preview", "type": "output"}],
        "animated": (True,),
    }


def test_save_loop_numbers_each_new_file(comfy):
    first = saved(comfy, run(comfy.nodes.SaveLoop, frames=closed_loop(), filename_prefix="numbered/loop"))
    second = saved(comfy, run(comfy.nodes.SaveLoop, frames=closed_loop(), filename_prefix="numbered/loop"))
    assert (first.name, second.name) == ("loop_00001_.mp4", "loop_00002_.mp4") and first.is_file()


def test_save_loop_counts_frames_on_the_progress_bar(comfy):
    run(comfy.nodes.SaveLoop, frames=closed_loop(6), filename_prefix="progress/loop")
    assert comfy.utils.bars[-1].updates == [(done, 5) for done in range(1, 6)]


# A cancel during an ffmpeg write (MP4) once left the hidden temporary: ffmpeg, not closed on the way out, wrote the
# file again after the writer had removed it.
@pytest.mark.parametrize("fmt", ["webp", "mp4"])
def test_cancel_stops_saving_and_leaves_no_file(comfy, fmt):
    cancel_at(comfy, 2)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        run(comfy.nodes.SaveLoop, frames=closed_loop(6), format=fmt, filename_prefix=f"cancelled-{fmt}/loop")
    gc.collect()  # whatever the exception kept alive is gone, as in a ComfyUI that keeps running
    assert comfy.utils.bars[-1].updates[-1] == (2, 5)
    assert list((comfy.output / f"cancelled-{fmt}").iterdir()) == []


# Bad inputs: the library's one line


def two_pictures(context):
    return {"image": torch.cat([context["image"]] * 2)}


BAD_INPUTS = [
    ("MotionLoop", two_pictures, "the image is a batch of 2 pictures: a loop is made from one picture"),
    ("DiffusionLoop", two_pictures, "the image is a batch of 2 pictures"),
    ("MotionLoop", lambda c: {"image": c["image"][0]}, "the image tensor is [96, 128, 3]: give a ComfyUI IMAGE"),
    ("SalientMask", lambda c: {"image": c["image"][..., :1]}, "the image tensor is [1, 96, 128, 1]"),
    ("MotionLoop", lambda c: {"mask": torch.zeros(1, 96, 128)}, "the mask is empty (all black)"),
    ("MotionLoop", lambda c: {"mask": torch.ones(2, 96, 128)}, "the mask tensor is [2, 96, 128]: give one"),
    ("MotionLoop", lambda c: {"size": "12x"}, "invalid size '12x'"),
    ("MotionLoop", lambda c: {"frames": 1}, "frames 1 is out of range"),
    ("DiffusionLoop", lambda c: {"steps": 0}, "steps 0 is out of range"),
    ("DiffusionLoop", lambda c: {"loop_closure": "spiral"}, "loop_closure 'spiral' is unknown"),
    ("LoadModel", lambda c: {"model_dir": "/no/such/model"}, "model folder not found: /no/such/model"),
    ("LoadModel", lambda c: {"device": "quantum"}, "device 'quantum' is unknown"),
    ("SaveLoop", lambda c: {"frames": closed_loop()[:1]}, "a closed loop of 1 frame leaves nothing"),
    ("SaveLoop", lambda c: {"fps": 0.0}, "fps 0.0 is out of range"),
]


@pytest.mark.parametrize(("node", "bad", "message"), BAD_INPUTS)
def test_a_bad_input_raises_the_librarys_one_line(comfy, model, tiny_model_dir, image, node, bad, message):
    context = {"image": comfy_image(image)}
    good = {
        "LoadModel": {"model_dir": tiny_model_dir},
        "SalientMask": {"image": context["image"]},
        "MotionLoop": {"image": context["image"], "frames": FRAMES},
        "DiffusionLoop": {"model": model, "image": context["image"], "frames": FRAMES, "steps": 2, "size": "64"},
        "SaveLoop": {"frames": closed_loop(), "filename_prefix": "bad/loop"},
    }[node]
    with pytest.raises(LoopAnimateError) as error:
        run(getattr(comfy.nodes, node), **{**good, **bad(context)})
    assert message in str(error.value) and "\n" not in str(error.value)


# The example workflow and the registry's metadata


def workflow() -> dict:
    return json.loads((PACK / "workflows" / "loop.json").read_text())


def schema_of(comfy, node_type: str):
    return next(node for node in comfy.nodes.NODES if node.define_schema().node_id == node_type).define_schema()


def widget_inputs(schema, values: list) -> dict:
    """A workflow node's `widgets_values` by input id: the widgets in schema order, each `control_after_generate`
    followed by its mode ("fixed", "randomize"), which the node does not take."""
    values = list(values)
    named = {}
    for spec in schema.inputs:
        if spec.io_type in comfy_stubs.WIDGET_TYPES:
            named[spec.id] = values.pop(0)
            if spec.options.get("control_after_generate"):
                values.pop(0)
    assert values == [], f"{schema.node_id}: widgets_values has {len(values)} values more than its widgets"
    return named


def test_the_example_workflow_wires_matching_types(comfy):
    graph = workflow()
    nodes = {node["id"]: node for node in graph["nodes"]}
    for _, source, slot, target, target_slot, link_type in graph["links"]:
        given = nodes[source]["outputs"][slot]["type"]
        if nodes[source]["type"] != "LoadImage":
            given = schema_of(comfy, nodes[source]["type"]).outputs[slot].io_type
        name = nodes[target]["inputs"][target_slot]["name"]
        taken = next(spec for spec in schema_of(comfy, nodes[target]["type"]).inputs if spec.id == name).io_type
        assert given == taken == link_type, f"link {source}.{slot} -> {target}.{name}"


def test_the_example_workflow_runs(comfy):
    """Each node in the workflow's order, its widgets as saved, ComfyUI's LoadImage standing in for the coffee photo."""
    graph = workflow()
    links = {link[0]: link for link in graph["links"]}
    outputs = {}
    for node in sorted(graph["nodes"], key=lambda node: node["order"]):
        if node["type"] == "LoadImage":
            outputs[node["id"]] = (comfy_image(PIL.Image.open(ROOT / "examples" / node["widgets_values"][0])),)
            continue
        schema = schema_of(comfy, node["type"])
        inputs = widget_inputs(schema, node["widgets_values"])
        for entry in node["inputs"]:
            _, source, slot, *_ = links[entry["link"]]
            inputs[entry["name"]] = outputs[source][slot]
        result = next(n for n in comfy.nodes.NODES if n.define_schema().node_id == node["type"]).execute(**inputs)
        outputs[node["id"]] = result.args
        last = result
    frames, _ = read_video(saved(comfy, last))
    assert frames.shape == (34, 400, 600, 3)  # 35 frames made, the seam's repeat left out


def test_the_pack_declares_what_the_registry_reads():
    config = tomllib.loads((PACK / "pyproject.toml").read_text())
    assert {"PublisherId", "DisplayName", "Icon"} <= set(config["tool"]["comfy"])
    assert config["project"]["name"] != "loopanimate"  # the library's name; the pack depends on it
    assert any(requirement.startswith("loopanimate") for requirement in config["project"]["dependencies"])
