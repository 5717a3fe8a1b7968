"""Stand-ins for the ComfyUI modules the node pack imports (`comfy_api.latest`, `folder_paths`, `comfy.utils`,
`comfy.model_management`), put into `sys.modules` before the pack is imported, as node packs test without ComfyUI.

They follow ComfyUI's own (comfy_api/latest/_io.py, comfy/utils.py, comfy/model_management.py, folder_paths.py) where
the pack touches them: an input type takes only the keywords ComfyUI's takes, so a misspelt one fails here too; the
progress bar calls the hook ComfyUI's server installs; an interrupt is a flag that the next check raises once.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import types
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import pytest

# The keywords each input type's constructor takes besides its id, as ComfyUI names them.
COMMON = ("display_name", "optional", "tooltip", "lazy", "extra_dict", "raw_link")
WIDGET = (*COMMON, "default", "socketless", "force_input")
KEYWORDS = {
    "IMAGE": COMMON,
    "MASK": COMMON,
    "STRING": (*WIDGET, "multiline", "placeholder", "dynamic_prompts"),
    "INT": (*WIDGET, "min", "max", "step", "control_after_generate", "display_mode"),
    "FLOAT": (*WIDGET, "min", "max", "step", "round", "display_mode"),
    "BOOLEAN": (*WIDGET, "label_on", "label_off"),
    "COMBO": (*COMMON, "default", "socketless", "options", "control_after_generate", "upload", "image_folder",
              "remote"),
}  # fmt: skip
WIDGET_TYPES = ("STRING", "INT", "FLOAT", "BOOLEAN", "COMBO")  # shown as widgets; the rest are sockets


class Input:
    """One input of a node: its id, its type and the options it was given."""

    io_type = ""
    keywords: tuple[str, ...] = ()

    def __init__(self, id: str, **options: Any) -> None:
        unknown = set(options) - set(self.keywords)
        if unknown:
            raise TypeError(f"{self.io_type} input {id!r} got unexpected keywords {sorted(unknown)}")
        self.id, self.options = id, options
        self.optional = options.get("optional", False)


class Output:
    def __init__(self, id: str | None = None, display_name: str | None = None, tooltip: str | None = None,
                 is_output_list: bool = False) -> None:  # fmt: skip
        self.id, self.display_name, self.tooltip = id, display_name, tooltip


def comfy_type(io_type: str, keywords: tuple[str, ...] = COMMON) -> type:
    """A type such as `io.Image`, with its `Input` and `Output` classes."""
    attributes = {"io_type": io_type, "keywords": keywords}
    return type(io_type, (), {
        "io_type": io_type,
        "Input": type("Input", (Input,), attributes),
        "Output": type("Output", (Output,), {"io_type": io_type}),
    })  # fmt: skip


@dataclasses.dataclass
class Schema:
    node_id: str
    display_name: str | None = None
    category: str = "sd"
    inputs: list[Input] = dataclasses.field(default_factory=list)
    outputs: list[Output] = dataclasses.field(default_factory=list)
    hidden: list = dataclasses.field(default_factory=list)
    description: str = ""
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_api_node: bool = False
    not_idempotent: bool = False
    enable_expand: bool = False

    def validate(self) -> None:
        """ComfyUI's check: input ids and output ids unique, and none shared between them."""
        inputs, outputs = [i.id for i in self.inputs], [o.id for o in self.outputs]
        if len(set(inputs)) != len(inputs) or len(set(outputs)) != len(outputs) or set(inputs) & set(outputs):
            raise ValueError(f"ids must be unique: inputs {inputs}, outputs {outputs}")


class NodeOutput:
    def __init__(self, *args: Any, ui: dict | None = None, expand: dict | None = None,
                 block_execution: str | None = None) -> None:  # fmt: skip
        self.args, self.ui, self.expand, self.block_execution = args, ui, expand, block_execution

    def __getitem__(self, index: int) -> Any:
        return self.args[index]


class ComfyNode:
    @classmethod
    def define_schema(cls) -> Schema:
        raise NotImplementedError

    @classmethod
    def execute(cls, **kwargs) -> NodeOutput:
        raise NotImplementedError


class ComfyExtension(ABC):
    async def on_load(self) -> None:  # noqa: B027  (ComfyUI's is optional to override: it does nothing)
        """Called when the extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list[type[ComfyNode]]: ...


def io_module() -> types.ModuleType:
    io = types.ModuleType("comfy_api.latest.io")
    io.Input, io.Output, io.Schema, io.NodeOutput, io.ComfyNode = Input, Output, Schema, NodeOutput, ComfyNode
    io.Image, io.Mask = comfy_type("IMAGE"), comfy_type("MASK")
    io.String, io.Int = comfy_type("STRING", KEYWORDS["STRING"]), comfy_type("INT", KEYWORDS["INT"])
    io.Float, io.Boolean = comfy_type("FLOAT", KEYWORDS["FLOAT"]), comfy_type("BOOLEAN", KEYWORDS["BOOLEAN"])
    io.Combo = comfy_type("COMBO", KEYWORDS["COMBO"])
    io.Custom = comfy_type
    return io


def utils_module() -> types.ModuleType:
    """comfy.utils: a ProgressBar that calls PROGRESS_BAR_HOOK (set by ComfyUI's server) and is kept in `bars`."""
    utils = types.ModuleType("comfy.utils")
    utils.PROGRESS_BAR_HOOK = None
    utils.bars = []

    class ProgressBar:
        def __init__(self, total: int, node_id: str | None = None) -> None:
            self.total, self.current, self.node_id, self.hook = total, 0, node_id, utils.PROGRESS_BAR_HOOK
            self.updates: list[tuple[int, int]] = []
            utils.bars.append(self)

        def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
            if total is not None:
                self.total = total
            self.current = min(value, self.total)
            self.updates.append((self.current, self.total))
            if self.hook is not None:
                self.hook(self.current, self.total, preview, node_id=self.node_id)

    utils.ProgressBar = ProgressBar
    return utils


def model_management_module() -> types.ModuleType:
    """comfy.model_management: Cancel sets a flag; the next check raises InterruptProcessingException once."""
    management = types.ModuleType("comfy.model_management")
    management.interrupt_processing = False

    class InterruptProcessingException(Exception):
        pass

    def interrupt_current_processing(value: bool = True) -> None:
        management.interrupt_processing = value

    def throw_exception_if_processing_interrupted() -> None:
        if management.interrupt_processing:
            management.interrupt_processing = False
            raise InterruptProcessingException()

    management.InterruptProcessingException = InterruptProcessingException
    management.interrupt_current_processing = interrupt_current_processing
    management.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    return management


def folder_paths_module(base: Path) -> types.ModuleType:
    """folder_paths over `base`: output/ and models/, and ComfyUI's numbering of saved files."""
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.models_dir = str(base / "models")
    folder_paths.output_directory = str(base / "output")
    folder_paths.get_output_directory = lambda: folder_paths.output_directory

    def get_save_image_path(filename_prefix: str, output_dir: str, image_width: int = 0, image_height: int = 0):
        subfolder = os.path.dirname(os.path.normpath(filename_prefix))
        filename = os.path.basename(os.path.normpath(filename_prefix))
        folder = os.path.join(output_dir, subfolder)
        if os.path.commonpath((output_dir, os.path.abspath(folder))) != output_dir:
            raise Exception("Saving image outside the output folder is not allowed.")
        os.makedirs(folder, exist_ok=True)
        numbered = re.compile(re.escape(filename) + r"_(\d+)_")
        taken = [int(m.group(1)) for name in os.listdir(folder) if (m := numbered.match(name))]
        return folder, filename, max(taken, default=0) + 1, subfolder, filename_prefix

    folder_paths.get_save_image_path = get_save_image_path
    return folder_paths


def install(patch: pytest.MonkeyPatch, base: Path) -> types.SimpleNamespace:
    """Put the stand-ins into `sys.modules` (undone with `patch`); return them."""
    io, utils, management = io_module(), utils_module(), model_management_module()
    folder_paths = folder_paths_module(base)
    latest = types.ModuleType("comfy_api.latest")
    latest.io, latest.ComfyExtension = io, ComfyExtension
    comfy_api, comfy = types.ModuleType("comfy_api"), types.ModuleType("comfy")
    comfy_api.__path__, comfy.__path__ = [], []
    comfy_api.latest, comfy.utils, comfy.model_management = latest, utils, management
    modules = {
        "comfy_api": comfy_api,
        "comfy_api.latest": latest,
        "comfy": comfy,
        "comfy.utils": utils,
        "comfy.model_management": management,
        "folder_paths": folder_paths,
    }
    for name, module in modules.items():
        patch.setitem(sys.modules, name, module)
    return types.SimpleNamespace(io=io, utils=utils, model_management=management, folder_paths=folder_paths)
