"""Draws docs/alss.png: source frame index over clip position for ALSS, palindrome and plain clips (35 frames).

    .venv/bin/python docs/alss_figure.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from loopanimate.data.alss import alss_indices

figure, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=100, sharey=True)
for axis, mode in zip(axes, ("alss", "palindrome", "plain"), strict=True):
    for seed, colour in zip((0, 1, 2), ("tab:blue", "tab:orange", "tab:green"), strict=True):
        indices = alss_indices(400, 35, np.random.default_rng(seed), stride=3, mode=mode)
        axis.plot(indices - indices[0], marker=".", color=colour, label=f"seed {seed}")
        if mode != "plain":
            mirrored = indices[::-1] - indices[0]
            axis.plot(mirrored, linestyle=":", color=colour, alpha=0.5)
    axis.set_title({"alss": "ALSS (ours, the paper's)", "palindrome": "palindrome (ablation)", "plain": "plain (no loop)"}[mode])
    axis.set_xlabel("position in the 35-frame clip")
    axis.grid(alpha=0.3)
axes[0].set_ylabel("source frame - start frame (stride 3)")
axes[0].legend(fontsize=8)
figure.suptitle("Dotted: the same clip read backwards. ALSS meets it only at the ends and the peak; a palindrome is its own mirror.", fontsize=9)
figure.tight_layout()
figure.savefig(Path(__file__).with_name("alss.png"))
