"""Which UNet parameters a stage trains (paper §3): name patterns in, frozen everything else."""

from __future__ import annotations

import re

import torch

from loopanimate.errors import InvalidArgumentError


def select_trainable(model: torch.nn.Module, patterns: list[str]) -> list[str]:
    """Freeze `model`, then unfreeze every parameter whose name matches a pattern (re.search). Returns their names.

    A pattern that matches nothing is an error: it is a typo, or the wrong model.
    """
    names = [name for name, _ in model.named_parameters()]
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise InvalidArgumentError(f"trainable pattern {pattern!r} is not a regular expression ({error})") from None
        if not any(compiled[-1].search(name) for name in names):
            raise InvalidArgumentError(f"trainable pattern {pattern!r} matches no UNet parameter: check its spelling")
    model.requires_grad_(False)
    chosen = []
    for name, parameter in model.named_parameters():
        if any(regex.search(name) for regex in compiled):
            parameter.requires_grad_(True)
            chosen.append(name)
    return chosen
