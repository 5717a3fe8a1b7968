"""LoopAnimate for ComfyUI: copy or link this folder into `ComfyUI/custom_nodes`, with `loopanimate` installed in
ComfyUI's Python.

The nodes register through ComfyUI's V3 entry point only. There is no V1 `NODE_CLASS_MAPPINGS`: ComfyUI's loader
takes a pack's `NODE_CLASS_MAPPINGS` first and then never calls its `comfy_entrypoint`, and a V3 node already answers
V1's questions (`INPUT_TYPES`, `RETURN_TYPES`) itself, so the mapping would add nothing but a second way in.
"""

from comfy_api.latest import ComfyExtension, io

from .nodes import NODES


class LoopAnimateExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODES)


async def comfy_entrypoint() -> LoopAnimateExtension:
    return LoopAnimateExtension()
