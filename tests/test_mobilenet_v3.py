"""lmk.models.mobilenet_v3: reference sizes and costs, the block by hand, SE, strides, bad input."""

import pytest
import torch
from torch import nn

from lmk.complexity import profile
from lmk.models.mobilenet_v3 import (MOBILENET_V3_LARGE, MOBILENET_V3_SMALL, Bneck, MobileNetV3,
                                     SqueezeExcitation, mobilenet_v3_large, mobilenet_v3_small)


def count(m):
    return sum(p.numel() for p in m.parameters())


class _Classify(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.classify(x)


@pytest.mark.parametrize("build, params, howard_macs", [
    (mobilenet_v3_small, 2_542_856, 56e6),      # Howard et al. (2019), Table 3: 2.5 M, 56 M
    (mobilenet_v3_large, 5_483_032, 219e6),     # 5.4 M, 219 M
])
def test_reference_parameter_count_and_howard_macs(build, params, howard_macs):
    """Parameters: exactly the reference implementation's (torchvision ``mobilenet_v3_small``
    / ``_large`` with 1000 classes). MACs at 224 px: within 2 % of Howard's Table 3, which
    rounds to 2 digits (56 M: +-0.9 %) and may count the SE products and hard-swish, which
    ``FlopCounterMode`` does not (ours: 56.5 M and 216.6 M)."""
    net = build(1.0, num_classes=1000)
    assert count(net) == params
    macs = profile(_Classify(net), (1, 3, 224, 224))["macs"]
    assert abs(macs / howard_macs - 1) < 0.02, macs


def test_bneck_parameters_by_hand():
    # expand 1x1 (16 -> 72) + BN, depthwise 5x5 + BN, SE (72 -> 24 -> 72, with bias), project + BN
    block = Bneck(16, 5, 72, 24, se=True, activation="HS", stride=2)
    expected = (16 * 72 + 2 * 72) + (72 * 25 + 2 * 72) + (72 * 24 + 24 + 24 * 72 + 72) \
        + (72 * 24 + 2 * 24)
    assert count(block) == expected and not block.use_skip
    # no expansion conv when E == C_in (Large's first block), no SE, skip at stride 1
    plain = Bneck(16, 3, 16, 16, se=False, activation="RE", stride=1)
    assert count(plain) == (16 * 9 + 2 * 16) + (16 * 16 + 2 * 16) and plain.use_skip
    x = torch.randn(2, 16, 8, 8)
    assert block(x).shape == (2, 24, 4, 4) and plain(x).shape == (2, 16, 8, 8)


def test_skip_connection_adds_the_input():
    torch.manual_seed(0)
    block = Bneck(8, 3, 16, 8, se=False, activation="RE", stride=1).eval()
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + block.body(x))


@pytest.mark.parametrize("bias, factor", [(3.0, 1.0), (-3.0, 0.0), (0.0, 0.5), (1.5, 0.75)])
def test_squeeze_excitation_gate_is_a_hard_sigmoid(bias, factor):
    """With the second conv's weights at zero the gate is h-sigmoid(bias) = ReLU6(b + 3) / 6."""
    se = SqueezeExcitation(16)
    assert se.gate[1].out_channels == 8                     # 16 / 4 = 4, rounded up to 8
    with torch.no_grad():
        se.gate[3].weight.zero_()
        se.gate[3].bias.fill_(bias)
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(se(x), factor * x)


@pytest.mark.parametrize("arch, table", [("small", MOBILENET_V3_SMALL),
                                         ("large", MOBILENET_V3_LARGE)])
def test_blocks_follow_the_table(arch, table):
    net = MobileNetV3(arch)
    assert isinstance(net.stem[-1], nn.Hardswish) and net.stem[0].stride == (2, 2)
    for block, (k, e, c, se, act, s) in zip(net.blocks, table, strict=True):
        depthwise = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.groups > 1][0]
        assert depthwise.kernel_size == (k, k) and depthwise.stride == (s, s)
        assert depthwise.out_channels == e and block.body[-1][0].out_channels == c
        assert any(isinstance(m, SqueezeExcitation) for m in block.modules()) == se
        wanted = nn.Hardswish if act == "HS" else nn.ReLU
        inside_se = {id(m) for x in block.modules() if isinstance(x, SqueezeExcitation)
                     for m in x.modules()}
        acts = [m for m in block.body.modules()
                if isinstance(m, (nn.ReLU, nn.Hardswish)) and id(m) not in inside_se]
        assert acts and all(isinstance(m, wanted) for m in acts)


@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_feature_strides(width):
    net = mobilenet_v3_small(width).eval()
    with torch.no_grad():
        features = net(torch.zeros(2, 3, 64, 96))
    assert sorted(features) == [2, 4, 8, 16, 32]
    for stride, f in features.items():
        assert f.shape == (2, net.feature_channels[stride], 64 // stride, 96 // stride)
    assert net.feature_channels[32] == max(8, int(96 * width + 4) // 8 * 8)


def test_first_block_stride_one_gives_xia_maps_at_112_px():
    """Xia et al. (2022), Fig. 2: 28x28, 14x14, 7x7 for a 112 px crop."""
    net = mobilenet_v3_small(1.0, first_block_stride=1).eval()
    with torch.no_grad():
        features = net(torch.zeros(1, 3, 112, 112))
    assert {s: tuple(f.shape[1:]) for s, f in features.items()} == {
        2: (16, 56, 56), 4: (24, 28, 28), 8: (48, 14, 14), 16: (96, 7, 7)}
    # the same maps as the usual network at 224 px, so the same cost past the stem
    usual = mobilenet_v3_small(1.0)(torch.zeros(1, 3, 224, 224))
    shapes = [tuple(f.shape) for f in features.values()]
    assert [tuple(f.shape) for f in usual.values()][2:] == shapes[1:]
    assert count(net) == count(mobilenet_v3_small(1.0))


def test_num_blocks_truncates():
    net = mobilenet_v3_small(1.0, first_block_stride=1, num_blocks=3)
    assert len(net.blocks) == 3 and net.max_stride == 4
    assert net(torch.zeros(1, 3, 12, 12))[4].shape == (1, 24, 3, 3)


def test_classifier():
    net = mobilenet_v3_small(0.5, num_classes=7).eval()
    assert net.classify(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
    with pytest.raises(RuntimeError, match="classifier"):
        mobilenet_v3_small(0.5).classify(torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize("kwargs, match", [
    ({"arch": "medium"}, "arch"),
    ({"width_mult": 0}, "width_mult"),
    ({"width_mult": True}, "width_mult"),
    ({"num_classes": 0}, "num_classes"),
    ({"first_block_stride": 3}, "first_block_stride"),
    ({"num_blocks": 12}, "num_blocks"),
    ({"num_blocks": 0}, "num_blocks"),
    ({"in_channels": 2.0}, "in_channels"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MobileNetV3(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"kernel": 4}, "kernel"), ({"stride": 3}, "stride"), ({"activation": "GELU"}, "activation"),
    ({"expansion": 0}, "expansion"),
])
def test_bad_bneck_arguments(kwargs, match):
    args = {"cin": 8, "kernel": 3, "expansion": 16, "cout": 8, "se": False, "activation": "RE",
            "stride": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        Bneck(**args)


def test_bad_images():
    net = mobilenet_v3_small(0.25)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.zeros(1, 3, 48, 64))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        net(torch.zeros(3, 64, 64))
