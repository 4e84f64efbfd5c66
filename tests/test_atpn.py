"""lmk.models.atpn: Xia et al. (2022) shapes, mean-shape residual, ablation flags, gradient
paths, costs against Tables 2 and 5, bad arguments."""

import itertools

import pytest
import torch
from torch import nn

from lmk.models.atpn import (ATPN, STAGE_MODULES, XIA_COSTS, AlignmentBranch, MultiviewBlock,
                             xia_cost_table)
from lmk.geometry import rescale_points
from lmk.ops import CoordConv2d, cheap_heatmap

N = 5
WIDTH = 0.25          # 8-channel minimum widths: fast on a CPU


def _model(size=64, **kwargs):
    torch.manual_seed(0)
    return ATPN(N, size, width=WIDTH, **kwargs)


def _images(b=2, size=64, seed=0):
    h, w = (size, size) if isinstance(size, int) else size
    return torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _train_alignment_fc(model, seed=1):
    """Give the zero-initialised last layer some weights, so landmarks depend on the image."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.alignment.fc.weight.copy_(0.05 * torch.randn(model.alignment.fc.weight.shape,
                                                           generator=g))


def _grads(model):
    """Names of the parameters with a non-zero gradient."""
    return {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}


@pytest.mark.parametrize("size", [64, 96, 112, (64, 96)])
def test_output_shapes_and_ranges(size):
    model = ATPN(N, size, width=WIDTH)
    out = model(_images(3, size))
    assert set(out) == {"landmarks", "pose", "confidence"}
    assert out["landmarks"].shape == (3, N, 2)
    assert out["pose"].shape == (3, 3) and out["confidence"].shape == (3,)
    assert bool((out["pose"].abs() <= torch.pi).all())
    h, w = (size, size) if isinstance(size, int) else size
    assert model.alignment.depthwise.kernel_size == (h // 16, w // 16)


def test_backbone_levels_are_xia_fig2_maps_at_112_px():
    model = ATPN(98, 112)
    features = model.backbone(torch.zeros(1, 3, 112, 112))
    assert {s: tuple(f.shape[-2:]) for s, f in features.items() if s >= 4} == {
        4: (28, 28), 8: (14, 14), 16: (7, 7)}
    assert model.heatmap(torch.zeros(1, 98, 2)).shape == (1, 1, 28, 28)


def test_untrained_model_predicts_the_mean_shape():
    model = _model().eval()
    centre = torch.full((1, N, 2), 31.5)                    # (64 - 1) / 2: the image centre
    torch.testing.assert_close(model(_images(1))["landmarks"], centre)
    shape = torch.rand(N, 2, generator=torch.Generator().manual_seed(4)) * 63
    model.set_mean_shape(shape)
    torch.testing.assert_close(model(_images(2))["landmarks"], shape.expand(2, N, 2))
    torch.testing.assert_close(ATPN(N, 64, width=WIDTH, mean_shape=shape).mean_shape, shape)


def test_residual_is_in_half_image_units():
    """A bias of (0.5, -0.25) on the last layer moves every point by (W/2, H/2) times it."""
    model = _model((64, 96)).eval()
    with torch.no_grad():
        model.alignment.fc.bias.copy_(torch.tensor([0.5, -0.25] * N))
    moved = model(_images(1, (64, 96)))["landmarks"] - model.mean_shape
    torch.testing.assert_close(moved, torch.tensor([24.0, -8.0]).expand(1, N, 2))


def test_batch_of_one_agrees_with_a_batch_in_eval_mode():
    model = _model()
    _train_alignment_fc(model)
    model.eval()
    images = _images(4)
    with torch.no_grad():
        batch = model(images)
        singles = [model(images[i:i + 1]) for i in range(4)]
    for key in batch:
        torch.testing.assert_close(batch[key], torch.cat([s[key] for s in singles]),
                                   rtol=1e-5, atol=1e-5)


def test_heatmap_fusion_multiplies_the_low_level_features():
    """The pose branch sees F4 * H with H the cheap heatmap of the landmarks on the 1/4 grid."""
    model = _model().eval()
    _train_alignment_fc(model)
    images = _images(2)
    with torch.no_grad():
        out = model(images)
        f4 = model.backbone(images)[4]
        heat = cheap_heatmap((out["landmarks"] + 0.5) / 4 - 0.5, (16, 16))
        pose = torch.pi * torch.tanh(model.pose(f4, heat))
        unfused = torch.pi * torch.tanh(model.pose(f4))
    torch.testing.assert_close(out["pose"], pose)
    assert not torch.equal(out["pose"], unfused)
    # without fusion the pose does not depend on where the landmarks are (exactly); with it,
    # it does (an untrained branch responds weakly, but any change shows)
    plain = _model(heatmap_fusion=False).eval()
    with torch.no_grad():
        before = plain(images)
        plain.set_mean_shape(torch.zeros(N, 2))
        after = plain(images)
        assert torch.equal(after["pose"], before["pose"])
        assert torch.equal(after["confidence"], before["confidence"])
        model.set_mean_shape(torch.zeros(N, 2))
        moved = model(images)
        assert not torch.equal(moved["pose"], out["pose"])
        assert not torch.equal(moved["confidence"], out["confidence"])


def test_low_level_flag_decides_which_levels_reach_the_landmarks():
    images = _images(2)
    for low_level, levels in ((True, (4, 8, 16)), (False, (16,))):
        model = _model(low_level=low_level).eval()
        _train_alignment_fc(model)
        assert model.alignment.levels == levels
        assert (model.alignment.fusion is None) == (not low_level)
        with torch.no_grad():
            features = model.backbone(images)
            base = model.alignment(features)
            changed = {**features, 4: features[4] + 1.0}
            moved = (model.alignment(changed) - base).abs().max()
        assert (moved > 0) == low_level
    # without the low levels the branch runs on the deepest map alone
    lone = _model(low_level=False).eval()
    with torch.no_grad():
        lone.alignment({16: torch.zeros(1, lone.backbone.feature_channels[16], 4, 4)})


def test_multiview_flag_adds_exactly_the_multiview_blocks():
    full, without = _model(), _model(multiview=False)
    blocks = [m for m in full.modules() if isinstance(m, MultiviewBlock)]
    assert len(blocks) == 3 and not any(isinstance(m, MultiviewBlock) for m in without.modules())
    count = sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in without.parameters())
    assert count == sum(p.numel() for b in blocks for p in b.parameters())


def test_multiview_block_by_hand():
    block = MultiviewBlock(24)
    widths = [c[0].out_channels for c in block.convs]
    assert widths == [12, 6, 6]                           # receptive fields 3, 5, 7
    params = sum(p.numel() for p in block.parameters())
    assert params == (24 * 12 + 12 * 6 + 6 * 6) * 9 + 2 * (12 + 6 + 6)
    block.eval()
    x = torch.randn(1, 24, 5, 5)
    with torch.no_grad():
        views, y = [], x
        for conv in block.convs:
            y = conv(y)
            views.append(y)
        torch.testing.assert_close(block(x), x + torch.cat(views, 1))


def test_coordconv_flag_removes_every_coordinate_channel():
    with_coords, without = _model(), _model(coordconv=False)
    coord = [m for m in with_coords.modules() if isinstance(m, CoordConv2d)]
    assert len(coord) == 4 and all(m.coords for m in coord)          # 3 downsamplings + the mix
    assert all(not m.coords for m in without.modules() if isinstance(m, CoordConv2d))
    for a, b in zip(coord, [m for m in without.modules() if isinstance(m, CoordConv2d)]):
        assert a.conv.in_channels == b.conv.in_channels + 2
    # the effect: a constant feature map still gives position-dependent values with coords
    c4 = with_coords.backbone.feature_channels[4]
    flat = torch.zeros(1, c4, 16, 16)
    for model, varies in ((with_coords, True), (without, False)):
        conv = model.alignment.down["4"][0].eval()
        with torch.no_grad():
            assert bool(conv(flat).std(dim=(2, 3)).max() > 0) == varies


def test_downsampling_puts_every_level_on_the_deepest_grid():
    model = _model(112)
    strides = {s: model.alignment.down[str(s)][0].conv.stride for s in (4, 8, 16)}
    kernels = {s: model.alignment.down[str(s)][0].conv.kernel_size for s in (4, 8, 16)}
    assert strides == kernels == {4: (4, 4), 8: (2, 2), 16: (1, 1)}


def test_shared_features_flag():
    images = _images(2)
    shared, own = _model(), _model(shared_features=False)
    assert shared.pose.features is None and own.pose.features is not None
    assert own.tracking.features is not None
    # the single-task baseline's private layers: stem + bnecks 1-3, as in the backbone
    low = ("stem.", "blocks.0.", "blocks.1.", "blocks.2.")
    backbone_low = sum(p.numel() for n, p in shared.backbone.named_parameters()
                       if n.startswith(low))
    assert sum(p.numel() for p in own.pose.features.parameters()) == backbone_low
    # changing the shared backbone changes the pose only when the features are shared
    for model, follows in ((shared, True), (own, False)):
        model.eval()
        with torch.no_grad():
            before = model(images)
            model.backbone.stem[0].weight.mul_(1.5)
            after = model(images)
        assert bool((after["pose"] - before["pose"]).abs().max() > 1e-5) == follows
        assert bool((after["confidence"] - before["confidence"]).abs().max() > 1e-5) == follows


def test_gradients_of_each_output_reach_the_intended_parameters():
    model = _model()
    _train_alignment_fc(model)
    images = _images(2)
    low_backbone = {"stem", "blocks.0", "blocks.1", "blocks.2"}

    def top(name):
        parts = name.split(".")
        return parts[0] if parts[0] != "backbone" else ".".join(parts[1:3] if parts[1] == "blocks"
                                                                   else parts[1:2])

    model.zero_grad()
    model(images)["landmarks"].square().sum().backward()
    reached = {top(n) for n in _grads(model)}
    assert "alignment" in reached and "blocks.10" in reached and "stem" in reached
    assert not reached & {"pose", "tracking"}

    for key, branch, other in (("pose", "pose", "tracking"), ("confidence", "tracking", "pose")):
        model.zero_grad()
        model(images)[key].square().sum().backward()
        reached = {top(n) for n in _grads(model)}
        # the branch and the shared low-level layers; never the landmarks (detached heatmap)
        assert reached == {branch} | low_backbone, (key, reached)
        assert other not in reached and "alignment" not in reached


def test_own_features_keep_the_task_gradients_inside_the_branch():
    model = _model(shared_features=False)
    model(_images(2))["pose"].sum().backward()
    assert {n.split(".")[0] for n in _grads(model)} == {"pose"}
    assert any(n.startswith("pose.features.") for n in _grads(model))


def test_frozen_stage_trains_only_its_modules():
    """Xia Sec. 3.4, stage 2: backbone and alignment branch frozen, tracking branch trained."""
    model = _model()
    trained = STAGE_MODULES[2]
    for name, p in model.named_parameters():
        p.requires_grad_(name.split(".")[0] in trained)
    out = model(_images(2))
    (out["landmarks"].sum() + out["pose"].sum() + out["confidence"].sum()).backward()
    with_grad = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {"tracking"}


def test_stages_cover_every_module_once():
    names = [n for n, _ in _model().named_children()]
    staged = list(itertools.chain(*STAGE_MODULES.values()))
    assert sorted(staged) == sorted(names)


@pytest.mark.parametrize("flags", list(itertools.product([True, False], repeat=5)))
def test_no_parameter_is_left_without_a_gradient(flags):
    """Every ablation builds only what it uses: all outputs together reach every parameter."""
    keys = ("low_level", "multiview", "coordconv", "shared_features", "heatmap_fusion")
    torch.manual_seed(0)
    model = ATPN(3, 32, width=WIDTH, **dict(zip(keys, flags)))
    _train_alignment_fc(model)
    out = model(_images(2, 32))
    (out["landmarks"].sum() + out["pose"].sum() + out["confidence"].sum()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_costs_against_xia_tables_2_and_5():
    """Backbone + alignment branch at 112 px, 98 landmarks, width 1: inside the rounding of
    Table 2's figures (1.1 M: [1.05, 1.15) M; 0.06 G: [0.055, 0.065) G of MACs). The tracking
    branch is not inside Table 5's rounding (0.19 M, 0.017 G): 5 % fewer parameters and 12 %
    more MACs (see the module docstring); its exact counts are checked so a change shows."""
    rows = {r["part"]: r for r in xia_cost_table()}
    print("\n" + "\n".join(str(r) for r in rows.values()))
    main = rows["backbone+alignment"]
    assert (main["paper_params_m"], main["paper_g"]) == XIA_COSTS["backbone+alignment"]
    assert 1.05e6 <= main["params"] < 1.15e6
    assert 0.055 <= main["gmacs"] < 0.065
    assert main["params"] == 1_097_448
    tracking = rows["tracking"]
    assert tracking["params"] == 180_081
    assert 0.9 < tracking["params_ratio"] < 1.0 and 1.0 < tracking["macs_ratio"] < 1.15
    # Table 2 counts backbone + alignment: the whole model minus the two task branches
    model = ATPN(98, 112)
    total = sum(p.numel() for p in model.parameters())
    branches = sum(p.numel() for m in (model.pose, model.tracking) for p in m.parameters())
    assert total - branches == main["params"]


def test_alignment_branch_parameters_by_hand():
    """Width 1, 112 px, 98 landmarks: channels 24, 48, 96 at strides 4, 8, 16."""
    branch = AlignmentBranch({4: 24, 8: 48, 16: 96}, 98, (7, 7))
    fusion = (96 * 48 + 2 * 48 + 48 * 48 * 16 + 2 * 48) + (48 * 24 + 2 * 24 + 24 * 24 * 16 + 2 * 24)
    multiview = sum((c * (c // 2) + (c // 2) * (c // 4) + (c // 4) ** 2) * 9 + 2 * c
                    for c in (24, 48, 96))
    down = (26 * 24 * 16 + 2 * 24) + (50 * 48 * 4 + 2 * 48) + (98 * 96 + 2 * 96)
    width = 24 + 48 + 96
    head = (width + 2) * width + 2 * width + width * 49 + width * 196 + 196
    assert sum(p.numel() for p in branch.parameters()) == fusion + multiview + down + head


@pytest.mark.parametrize("kwargs, match", [
    ({"num_landmarks": 0}, "num_landmarks"),
    ({"input_size": 100}, "multiples of 16"),
    ({"input_size": 64.0}, "input_size"),
    ({"width": 0}, "width"),
    ({"width": "half"}, "width"),
    ({"low_level": 1}, "low_level"),
    ({"multiview": None}, "multiview"),
    ({"coordconv": "yes"}, "coordconv"),
    ({"shared_features": 0}, "shared_features"),
    ({"heatmap_fusion": 1.0}, "heatmap_fusion"),
    ({"mean_shape": torch.zeros(4, 2)}, "mean_shape"),
    ({"mean_shape": torch.full((N, 2), float("nan"))}, "mean_shape"),
])
def test_bad_arguments_raise_and_name_them(kwargs, match):
    args = {"num_landmarks": N, "input_size": 64, "width": WIDTH} | kwargs
    with pytest.raises(ValueError, match=match):
        ATPN(**args)


def test_bad_images():
    model = _model()
    with pytest.raises(ValueError, match="input_size"):
        model(_images(1, 96))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.zeros(3, 64, 64))


def test_heatmap_floor_is_a_checked_argument():
    points = torch.tensor([[[10.0, 12.0]]])
    for floor in (0.0, 0.5, 0.9):
        model = ATPN(1, 32, width=0.25, heatmap_floor=floor)
        expected = cheap_heatmap(rescale_points(points, 0.25), (8, 8), floor=floor)
        assert torch.equal(model.heatmap(points), expected)
    for bad in (-0.1, 1.0, True, "0.5"):
        with pytest.raises(ValueError, match="heatmap_floor must be a number in"):
            ATPN(1, 32, width=0.25, heatmap_floor=bad)
