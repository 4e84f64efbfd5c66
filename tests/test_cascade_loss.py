"""CascadeLoss (Mahpod et al. 2018): heatmap terms on H_0..H_K plus coordinate terms on P_1..P_K."""

import pytest
import torch

from lmk.codecs import HeatmapCodec
from lmk.losses import CascadeLoss


def _setup(k=2, b=2, n=68, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    codec = HeatmapCodec(size, size // 4, 1.3, "argmax")
    gt = 4 + torch.rand(b, n, 2, generator=g) * (size - 8)
    batch = {"landmarks": gt, "image": torch.zeros(b, 3, size, size)}
    target = codec.encode(gt)
    return codec, gt, batch, target


def test_zero_for_perfect_outputs():
    codec, gt, batch, target = _setup()
    out = {"base_heatmaps": target, "heatmaps": [target, target], "coordinates": [gt, gt]}
    assert CascadeLoss(codec)(out, batch).item() == pytest.approx(0.0, abs=1e-10)


def test_matches_a_term_by_term_computation():
    codec, gt, batch, target = _setup(seed=1)
    g = torch.Generator().manual_seed(2)
    maps = [torch.rand(target.shape, generator=g) for _ in range(3)]
    coords = [gt + torch.randn(gt.shape, generator=g) * 3 for _ in range(2)]
    out = {"base_heatmaps": maps[0], "heatmaps": maps[1:], "coordinates": coords}
    w_fg, w_c = 20.0, 0.05
    heat = 0.0
    for h in maps:                                       # mean over every pixel of every map
        heat += float((((h - target) ** 2) * (1 + w_fg * target)).sum() / target.numel())
    coord = 0.0
    for p in coords:                                     # heatmap cells: input px / 4 (32 -> 8)
        coord += float((((p - gt) / 4) ** 2).sum() / gt.numel())
    loss = CascadeLoss(codec, coordinate_weight=w_c, foreground_weight=w_fg)(out, batch)
    assert loss.item() == pytest.approx(heat + w_c * coord, rel=1e-5)


def test_one_cell_of_error_costs_one_in_the_coordinate_term():
    codec, gt, batch, target = _setup()
    moved = gt + torch.tensor([4.0, 0.0])                # 4 input px = 1 cell in x, 0 in y
    out = {"base_heatmaps": target, "heatmaps": [target], "coordinates": [moved]}
    terms = CascadeLoss(codec).terms(out, batch)
    assert terms["coordinates"][0].item() == pytest.approx(0.5)      # mean over x and y
    assert CascadeLoss(codec, coordinate_weight=0.0)(out, batch).item() == pytest.approx(0.0, abs=1e-10)


def test_gradients_reach_heatmaps_and_coordinates():
    codec, gt, batch, target = _setup()
    h = torch.zeros_like(target, requires_grad=True)
    p = (gt + 1).requires_grad_()
    CascadeLoss(codec)({"base_heatmaps": h, "heatmaps": [h], "coordinates": [p]}, batch).backward()
    assert h.grad.abs().sum() > 0 and p.grad.abs().sum() > 0


def test_bad_outputs_and_settings_raise():
    codec, gt, batch, target = _setup()
    with pytest.raises(KeyError, match="base_heatmaps"):
        CascadeLoss(codec)({"heatmaps": [target], "coordinates": [gt]}, batch)
    small = target[..., :4, :4]
    with pytest.raises(ValueError, match="heatmap size"):
        CascadeLoss(codec)({"base_heatmaps": small, "heatmaps": [small], "coordinates": [gt]}, batch)
    with pytest.raises(ValueError, match="coordinate_weight"):
        CascadeLoss(codec, coordinate_weight=-1)
