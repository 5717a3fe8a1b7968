"""The weight-free motion engine on photos no one chose: sixteen that packages ship, a prompt each.

For each photo (long side `--side`, 35 frames): the mask the prompt picks (as the CLI without --mask), the loop, and
its measures — background change (grey levels outside the mask grown by 4 px, goal 0), texture loss (share of
changed pixels that lost their detail, goal <= 1%), mask sanity (area share, components, border covered beyond one
side), Motion inside the mask and the Seam, with peak travel (the 95th percentile of the flow from frame 0 inside the
mask, at its farthest frame, as a share of the object's height; goal >= 3%), background change beyond the object's
reach (outside the mask grown by that travel: goal 0), and the IoU of the mask against a hand-drawn reference mask
of the whole subject (reference_masks.json beside this file; goal median >= 0.8). Writes table.md, results.json and
one contact sheet per photo (the mask over the photo, then every 6th frame) into `--out`; `--fast` runs four photos
small, to check that everything runs.

    python bench/motion_quality.py [--out runs/motion-quality] [--side 512] [--fast]
    python bench/motion_quality.py --phone    # seconds at 1080x1920 for four photos (goal <= 4 s each)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import skimage.data

from loopanimate.contact_sheet import contact_sheet
from loopanimate.engines import animate_without_weights, plan_motion
from loopanimate.engines.regions import prompt_regions
from loopanimate.evaluation.pixel_metrics import motion, seam_ratio
from loopanimate.evaluation.region_metrics import background_change, mask_sanity, texture_loss

# sample name -> prompt: every motion family, a direction, and a negation; scikit-image's, then other packages'.
PHOTOS = {
    "astronaut": "the astronaut breathes and sways gently",
    "chelsea": "the cat breathes",
    "coffee": "the cup spins",
    "rocket": "the rocket sways to the left",
    "retina": "the eye pulses",
    "colorwheel": "the colour wheel spins",
    "horse": "the horse bobs up and down",
    "hubble_deep_field": "the stars twinkle",
    "immunohistochemistry": "the tissue ripples",
    "coins": "the coins glow",
    "camera": "the man sways gently to the right",
    "clock": "the clock does not move",
    "cheetah": "the cheetah runs",
    "lion": "the lion breathes",
    "tower": "the tower sways gently",
    "grace_hopper": "the woman breathes",
}
# Photos other packages of the dev install ship: (package, file inside it).
PACKAGE_PHOTOS = {
    "cheetah": ("gradio", "media_assets/images/cheetah.jpg"),
    "lion": ("gradio", "media_assets/images/lion.jpg"),
    "tower": ("gradio", "media_assets/images/tower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
REFERENCES = Path(__file__).with_name("reference_masks.json")
FAST_PHOTOS = ("astronaut", "coffee", "rocket", "clock")
SHEET_EVERY = 6  # frames 0, 6, ..., 30 of 35: one row


def sample(name: str) -> np.ndarray:
    """A sample photo as the package ships it, read without importing the package (gradio takes seconds)."""
    if name not in PACKAGE_PHOTOS:
        return np.asarray(getattr(skimage.data, name)())
    package, inside = PACKAGE_PHOTOS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name}: {package} is not installed; install the dev extra (pip install -e '.[dev]')")
    with PIL.Image.open(Path(spec.submodule_search_locations[0]) / inside) as opened:
        return np.asarray(opened.convert("RGB"))


def photo(name: str, side: int) -> np.ndarray:
    """A sample photo as RGB uint8 with its long side at `side` pixels."""
    pixels = sample(name)
    if pixels.dtype == bool:
        pixels = np.where(pixels, 0, 255).astype(np.uint8)  # the horse (False in its mask): white on black
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    pixels = pixels[..., :3]
    scale = side / max(pixels.shape[:2])
    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def reference_mask(name: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The hand-drawn reference mask of `name` (bool, `shape`), or None where the prompt moves a field, not an
    object."""
    references = json.loads(REFERENCES.read_text())
    shapes = references["photos"].get(name)
    if shapes is None:
        return None
    if shapes.get("silhouette"):
        return photo(name, max(shape))[..., 0] > 127  # the horse: white on black
    scale = max(shape) / references["side"]
    drawn = np.zeros(shape, np.uint8)
    for polygon in shapes.get("polygon", []):
        cv2.fillPoly(drawn, [np.round(np.array(polygon) * scale).astype(np.int32)], 1)
    for cx, cy, r in shapes.get("circle", []):
        cv2.circle(drawn, (round(cx * scale), round(cy * scale)), round(r * scale), 1, -1)
    for cx, cy, rx, ry in shapes.get("ellipse", []):
        cv2.ellipse(
            drawn, (round(cx * scale), round(cy * scale)), (round(rx * scale), round(ry * scale)), 0, 0, 360, 1, -1
        )
    return drawn.astype(bool)


def iou(mask: np.ndarray, reference: np.ndarray | None) -> float | None:
    """Intersection over union of the mask (at 0.5) and the reference; None without a reference."""
    if reference is None:
        return None
    binary = mask > 0.5
    return float((binary & reference).sum() / max(int((binary | reference).sum()), 1))


def overlay(picture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo dimmed outside the mask, with the mask's outline in green."""
    shown = (picture * (0.35 + 0.65 * mask[..., None])).astype(np.uint8)
    contours, _ = cv2.findContours((mask > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(shown, contours, -1, (0, 255, 0), max(1, picture.shape[1] // 200))
    return shown


def sheet(picture: np.ndarray, mask: np.ndarray, frames: np.ndarray) -> PIL.Image.Image:
    """The mask over the photo, then every SHEET_EVERY-th frame, in one row."""
    return contact_sheet(np.concatenate([overlay(picture, mask)[None], frames[::SHEET_EVERY]]), columns=8)


def peak_travel(loop: np.ndarray, mask: np.ndarray) -> float:
    """How far the object gets from where it was, at the loop's farthest frame: the 95th percentile of the optical
    flow (OpenCV DIS) from frame 0 inside the mask, in pixels at the long side's 256 (as Motion)."""
    scale = 256 / max(loop.shape[1:3])
    size = (round(loop.shape[2] * scale), round(loop.shape[1] * scale))
    grey = [cv2.cvtColor(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY) for frame in loop]
    region = cv2.resize((mask > 0.5).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return max(float(np.percentile(np.linalg.norm(flow.calc(grey[0], g, None), axis=-1)[region], 95)) for g in grey)


def beyond_reach(loop: np.ndarray, picture: np.ndarray, mask: np.ndarray, travel: float) -> float:
    """Background change (grey levels) outside the mask grown by the object's peak travel: what a moving object
    covers as it moves is its own, anything further is damage. Goal 0."""
    reach = int(np.ceil(travel * max(picture.shape[:2]) / 256))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
    grown = cv2.dilate((mask > 0.5).astype(np.uint8), disc)
    return background_change(loop, picture, grown.astype(np.float32))


def measure(name: str, prompt: str, side: int, frames: int, out: Path) -> dict:
    picture = photo(name, side)
    start = time.perf_counter()
    parts, _ = prompt_regions(picture, prompt)  # what the CLI moves without --mask: the prompt's subjects
    mask = np.max([part.mask for part in parts], axis=0)
    mask_seconds = time.perf_counter() - start
    loop = animate_without_weights(picture, prompt, num_frames=frames, mask=mask)
    seconds = time.perf_counter() - start
    sheet(picture, mask, loop).save(out / f"sheet-{name}.png")
    video = loop.transpose(0, 3, 1, 2).astype(np.float32) / 255.0  # (F, 3, H, W) in [0, 1]
    travel = peak_travel(loop, mask)
    rows = np.nonzero((mask > 0.5).any(axis=1))[0]
    height = (np.ptp(rows) + 1) * 256 / max(picture.shape[:2]) if len(rows) else 1.0
    return {
        "photo": name,
        "prompt": prompt,
        "plan": plan_motion(prompt).describe(),
        "background_change": background_change(loop, picture, mask),
        "beyond_reach": beyond_reach(loop, picture, mask, travel),
        "travel": travel / height,
        "texture_loss": texture_loss(loop, picture),
        **mask_sanity(mask),
        "iou": iou(mask, reference_mask(name, mask.shape)),
        "motion": motion(video, region=mask > 0.5),
        "seam": seam_ratio(video),
        "mask_seconds": mask_seconds,
        "seconds": seconds,
    }


def table(rows: list[dict]) -> str:
    header = (
        "| photo | prompt | BG change | BG beyond reach | texture loss | area | parts | border | Motion | travel "
        "| IoU | Seam | s |"
    )
    lines = [header, "| --- | --- |" + " ---: |" * 11]
    for row in rows:
        seam = "n/a" if row["seam"] is None else f"{row['seam']:.2f}"
        overlap = "n/a" if row["iou"] is None else f"{row['iou']:.2f}"
        lines.append(
            f"| {row['photo']} | {row['prompt']} | {row['background_change']:.2f} | {row['beyond_reach']:.2f} "
            f"| {100 * row['texture_loss']:.2f}% | {row['area']:.2f} | {row['components']:.0f} | {row['border']:.2f} "
            f"| {row['motion']:.2f} | {100 * row['travel']:.1f}% | {overlap} | {seam} | {row['seconds']:.2f} |"
        )
    motions = [row["motion"] for row in rows]
    lines.append(f"\nmedian Motion {np.median(motions):.2f} px/frame at 256 (goal >= 1.0)")
    overlaps = [row["iou"] for row in rows if row["iou"] is not None]
    if overlaps:
        lines.append(f"median IoU {np.median(overlaps):.2f} over {len(overlaps)} photos with a reference (goal >= 0.8)")
    return "\n".join(lines)


PHONE = (1080, 1920)  # width, height: a phone's portrait wallpaper
PHONE_PHOTOS = ("astronaut", "chelsea", "coffee", "grace_hopper")


def phone_seconds(name: str, frames: int) -> float:
    """Seconds for the mask and `frames` frames of `name` stretched to a phone's portrait, as `measure` times them."""
    picture = cv2.resize(photo(name, max(PHONE)), PHONE, interpolation=cv2.INTER_CUBIC)
    start = time.perf_counter()
    parts, _ = prompt_regions(picture, PHOTOS[name])
    animate_without_weights(picture, PHOTOS[name], num_frames=frames, mask=np.max([p.mask for p in parts], axis=0))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/motion-quality")
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--frames", type=int, default=35)
    parser.add_argument("--fast", action="store_true", help="four photos at 160 pixels, 9 frames")
    parser.add_argument("--phone", action="store_true", help="only time four photos at 1080x1920 (goal <= 4 s)")
    args = parser.parse_args()
    if args.phone:
        for name in PHONE_PHOTOS:
            print(f"{name} at {PHONE[0]}x{PHONE[1]}, {args.frames} frames: {phone_seconds(name, args.frames):.2f} s")
        return
    names = FAST_PHOTOS if args.fast else tuple(PHOTOS)
    side, frames = (160, 9) if args.fast else (args.side, args.frames)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [measure(name, PHOTOS[name], side, frames, out) for name in names]
    text = table(rows)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    (out / "table.md").write_text(text + "\n")
    print(text)
    print(f"wrote {out / 'table.md'}, {out / 'results.json'} and sheet-*.png")


if __name__ == "__main__":
    main()
