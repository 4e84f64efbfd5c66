"""lmk.models.FFLD: Yan et al. (2020) baseline + CropNet stages."""

import pytest
import torch
from torch import nn

from lmk.codecs import CoordinateCodec
from lmk.models import FFLD, CropNet

N = 5


def _model(**kwargs):
    torch.manual_seed(0)
    return FFLD(N, **kwargs)


def _images(b=2, size=64):
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(1))


def _train_stage_heads(model):
    """Give the zero-initialised last layers (baseline and CropNets) non-zero weights, as
    after some training, so that gradients can pass them."""
    g = torch.Generator().manual_seed(2)
    for fc in [model.baseline.fc[-1]] + [stage.cropnet.fc for stage in model.stages]:
        with torch.no_grad():
            fc.weight.copy_(0.1 * torch.randn(fc.weight.shape, generator=g))


def _has_grad(module: nn.Module) -> bool:
    return any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in module.parameters())


@pytest.mark.parametrize("stages", [0, 1, 3])
def test_one_estimate_per_stage_plus_the_baseline(stages):
    model = _model(stages=stages)
    estimates = model(_images())
    assert len(estimates) == stages + 1 and len(model.stages) == stages
    assert all(e.shape == (2, N, 2) for e in estimates)


def test_a_new_stage_is_the_identity():
    model = _model()
    for mode in (model.train, model.eval):
        mode()
        estimates = model(_images())
        for later in estimates[1:]:
            assert torch.equal(later, estimates[0])


def test_estimates_are_input_pixels_in_the_coordinate_codec_convention():
    # an independent check of the unit: the untrained baseline outputs init_points exactly,
    # so its pixels must be what CoordinateCodec decodes them to
    init = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [0.5, -0.25], [-0.9, 0.3]])
    model = _model(init_points=init)
    images = torch.randn(1, 3, 64, 96)
    expected = CoordinateCodec((64, 96)).decode(init)
    torch.testing.assert_close(model(images)[0][0], expected)
    assert torch.allclose(expected[0], torch.tensor([-0.5, -0.5]))      # outer image corner


def test_a_trained_stage_moves_the_estimate_by_stride_times_its_output():
    model = _model(stages=1)
    _train_stage_heads(model)
    model.eval()
    estimates = model(_images(1))
    stage = model.stages[0]
    features = model.baseline.backbone(_images(1))[stage.stride]
    delta = stage(features, estimates[0]) - estimates[0]
    assert stage.stride == 8 and torch.count_nonzero(delta) > 0
    torch.testing.assert_close(estimates[1] - estimates[0], delta)


def _backbone_grads(model, loss_stage=1):
    model.zero_grad()
    estimates = model(_images())
    estimates[0].retain_grad()
    estimates[loss_stage].square().sum().backward()
    backbone = model.baseline.backbone
    fine = [backbone.stem, backbone.stages[0], backbone.stages[1]]       # strides 2, 4, 8
    coarse = [backbone.stages[2], backbone.stages[3], model.baseline.fc]  # only feed S0
    return ([_has_grad(m) for m in fine], [_has_grad(m) for m in coarse],
            estimates[0].grad, _has_grad(model.stages[0]))


def test_gradients_reach_the_backbone_through_the_crop_and_stop_with_the_flags():
    model = _model()
    _train_stage_heads(model)
    # both paths: everything learns from the stage-1 loss
    fine, coarse, grad_s0, stage = _backbone_grads(model)
    assert all(fine) and all(coarse) and stage

    # features only (nabla_low_level): the crop's level and below learn; layers that only
    # feed the baseline estimate do not
    model.grad_centers = False
    fine, coarse, grad_s0, stage = _backbone_grads(model)
    assert all(fine) and not any(coarse) and grad_s0 is None and stage

    # crop location only: the loss reaches S0, and through the crop it is more than the 1 of
    # the residual sum (Eq. 10)
    model.grad_features, model.grad_centers = False, True
    fine, coarse, grad_s0, stage = _backbone_grads(model)
    assert all(coarse) and stage
    direct = 2 * model(_images())[1].detach()                           # dL/dS1 of sum(S1^2)
    assert not torch.allclose(grad_s0, direct)

    # neither: only the CropNet learns from the stage-1 loss
    model.grad_features = model.grad_centers = False
    fine, coarse, grad_s0, stage = _backbone_grads(model)
    assert not any(fine) and not any(coarse) and stage


def test_cropnet_matches_table_7_parameter_count():
    n, c = 68, 32                                      # 300W; stride-8 channels at 25 %
    select, width = 4 * n, 128
    expected = (2 * select                             # batch norm
                + select * width * 9 + 2 * width       # block conv 1 + BN
                + width * width * 9 + 2 * width        # block conv 2 + BN
                + select * width + 2 * width           # projection shortcut + BN
                + width * 2 * n + 2 * n)               # FC
    assert sum(p.numel() for p in CropNet(n, select, width).parameters()) == expected
    stage = FFLD(n, stages=1).stages[0]
    assert stage.select.weight.numel() == n * c * 4    # one 1x1 selection per landmark


def test_paper_configuration_size_against_yan():
    model = FFLD(68)                                   # ResNet-18, 25 %, 3 stages, 8x8 patches
    total = sum(p.numel() for p in model.parameters())
    baseline = sum(p.numel() for p in model.baseline.parameters())
    # reported, not asserted: Yan et al. (2020) Sec. 6.5 give 1.46M for their 3-stage model
    print(f"FFLD paper configuration: {total:,} parameters ({baseline:,} baseline), "
          f"Yan et al. report 1.46M")
    assert total > baseline


@pytest.mark.parametrize("kwargs, match", [
    ({"stages": 4}, "stages"), ({"stages": -1}, "stages"), ({"stages": 1.0}, "stages"),
    ({"stages": 2, "strides": (8,)}, "stages"), ({"strides": (8, 3, 2)}, "strides"),
    ({"patch_size": 0}, "patch_size"), ({"num_landmarks": 0}, "num_landmarks"),
])
def test_bad_arguments_raise_and_name_them(kwargs, match):
    kwargs = {"num_landmarks": N, **kwargs}
    with pytest.raises(ValueError, match=match):
        FFLD(**kwargs)


def test_return_features_gives_the_maps_each_stage_crops_for_the_align_loss():
    from lmk.losses import YAN_ASSIGNMENT, StagedLoss
    torch.manual_seed(0)
    model = FFLD(68, stages=3, channel_ratio=0.125, patch_size=4, width=8, return_features=True)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out["features"][0] is None
    assert [tuple(f.shape[-2:]) for f in out["features"][1:]] == [(8, 8), (16, 16), (32, 32)]
    model.return_features = False
    plain = model(x)
    for a, b in zip(out["points"], plain):
        torch.testing.assert_close(a, b)
    model.return_features = True
    gt = torch.rand(2, 68, 2) * 40 + 12
    loss = StagedLoss(YAN_ASSIGNMENT)(model(x), {"landmarks": gt, "image": x})
    loss.backward()
    assert torch.isfinite(loss) and model.stages[2].cropnet.fc.weight.grad.abs().sum() > 0
