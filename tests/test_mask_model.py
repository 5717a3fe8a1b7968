"""`--mask-model DIR`: a local SAM or semantic-segmentation folder finds the automatic mask; tiny random models built
here, nothing downloaded; bad folders are one line."""

import json

import numpy as np
import PIL.Image
import pytest
import torch

from loopanimate.animate import LoopRequest, make_loop
from loopanimate.engines.mask_model import model_mask
from loopanimate.errors import InvalidArgumentError


@pytest.fixture(scope="module")
def tiny_sam(tmp_path_factory) -> str:
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor
    from transformers.models.sam.configuration_sam import (
        SamMaskDecoderConfig,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    torch.manual_seed(0)
    vision = SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64,
                             output_channels=16, image_size=128, patch_size=16, global_attn_indexes=[1],
                             window_size=4, num_pos_feats=8)  # fmt: skip
    prompts = SamPromptEncoderConfig(hidden_size=16, image_size=128, patch_size=16, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, mlp_dim=32,
                                   iou_head_hidden_dim=16)  # fmt: skip
    folder = tmp_path_factory.mktemp("sam")
    SamModel(
        SamConfig(vision_config=vision, prompt_encoder_config=prompts, mask_decoder_config=decoder)
    ).save_pretrained(folder)
    processor = SamImageProcessor(size={"longest_edge": 128}, pad_size={"height": 128, "width": 128})
    SamProcessor(image_processor=processor).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_segmenter(tmp_path_factory) -> str:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    torch.manual_seed(0)
    labels = {0: "sky", 1: "water", 2: "person"}
    config = SegformerConfig(num_encoder_blocks=1, depths=[1], sr_ratios=[1], hidden_sizes=[16],
                             num_attention_heads=[1], patch_sizes=[7], strides=[4], mlp_ratios=[2],
                             decoder_hidden_size=16, num_labels=3, id2label=labels,
                             label2id={v: k for k, v in labels.items()})  # fmt: skip
    folder = tmp_path_factory.mktemp("segformer")
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 64}).save_pretrained(folder)
    return str(folder)


def picture() -> np.ndarray:
    image = np.full((96, 128, 3), 220, np.uint8)
    image[30:80, 40:90] = (200, 40, 30)
    return image


def salient() -> np.ndarray:
    mask = np.zeros((96, 128), np.float32)
    mask[30:80, 40:90] = 1.0
    return mask


def test_sam_gives_a_mask_of_the_picture_in_zero_to_one(tiny_sam):
    mask, name = model_mask(tiny_sam, picture(), salient(), "the box sways")
    assert name == "the object"
    assert mask is None or (mask.shape == (96, 128) and mask.min() >= 0.0 and mask.max() <= 1.0)


def test_a_semantic_segmenter_picks_the_class_the_prompt_names(tiny_segmenter):
    mask, name = model_mask(tiny_segmenter, picture(), salient(), "the water ripples")
    assert name == "the water"
    assert mask.shape == (96, 128) and set(np.unique(mask)) == {0.0, 1.0}


def test_a_semantic_segmenter_without_a_named_class_takes_the_one_over_the_object(tiny_segmenter):
    mask, name = model_mask(tiny_segmenter, picture(), salient(), "it sways")
    assert name in ("the sky", "the water", "the person")
    assert (mask[salient() > 0.5] > 0).any()  # the class chosen lies over the object


def test_animate_uses_the_mask_model_and_says_so(tmp_path, tiny_segmenter):
    PIL.Image.fromarray(picture()).save(tmp_path / "p.png")
    request = LoopRequest(
        image=str(tmp_path / "p.png"), prompt="the person sways", num_frames=4, mask_model=tiny_segmenter
    )
    loop = make_loop(request)
    said = [note for note in loop.notes if "mask model" in note]
    assert len(said) == 1 and said[0].startswith("mask: the person, from the mask model")


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda folder: None, "mask model folder not found"),
        (lambda folder: (folder.mkdir(), (folder / "config.json").write_text("{")), "is not valid JSON"),
        (lambda folder: (folder.mkdir(), (folder / "config.json").write_text("{}")), "names no model_type"),
        (lambda folder: (folder.mkdir(), (folder / "config.json").write_text(json.dumps({"model_type": "sam"}))),
         "no .safetensors weights"),
    ],
)  # fmt: skip
def test_a_bad_mask_model_folder_is_one_line(tmp_path, setup, words):
    setup(tmp_path / "m")
    PIL.Image.fromarray(picture()).save(tmp_path / "p.png")
    with pytest.raises(InvalidArgumentError, match=words):
        LoopRequest(image=str(tmp_path / "p.png"), mask_model=str(tmp_path / "m")).check()


def test_a_mask_model_with_a_painted_mask_is_refused(tmp_path, tiny_sam):
    with pytest.raises(InvalidArgumentError, match="--mask-model finds the mask"):
        LoopRequest(image="p.png", mask="m.png", mask_model=tiny_sam).check()
