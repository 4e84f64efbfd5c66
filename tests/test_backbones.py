"""Backbones: parameter counts against the reference models, feature strides, bad input."""

import pytest
import torch

from lmk.models import build_backbone, mobilenet_v2, resnet
from lmk.models.backbones import InvertedResidual, make_divisible


def count(m):
    return sum(p.numel() for p in m.parameters())


def test_mobilenet_v2_reference_parameter_count():
    # torchvision.models.mobilenet_v2() (Sandler et al. 2018 with a 1000-class classifier)
    assert count(mobilenet_v2(1.0, num_classes=1000)) == 3_504_872


@pytest.mark.parametrize("depth, expected", [(18, 11_689_512), (50, 25_557_032)])
def test_resnet_reference_parameter_counts(depth, expected):
    assert count(resnet(depth, 1.0, num_classes=1000)) == expected


def test_inverted_residual_parameters_by_hand():
    block = InvertedResidual(8, 16, stride=2, expansion=6)            # hidden = 48
    expected = (8 * 48 + 2 * 48) + (48 * 9 + 2 * 48) + (48 * 16 + 2 * 16)
    assert count(block) == expected and not block.use_skip
    assert InvertedResidual(16, 16, 1, 6).use_skip


def test_make_divisible():
    assert [make_divisible(v) for v in (8, 4, 6, 16 * 0.5, 24 * 0.25, 320 * 0.25, 1280)] == \
        [8, 8, 8, 8, 8, 80, 1280]
    assert make_divisible(20) == 24 and make_divisible(12) == 16     # never below 90 %


@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_mobilenet_v2_feature_strides(width):
    net = mobilenet_v2(width).eval()
    with torch.no_grad():
        feats = net(torch.zeros(2, 3, 64, 96))
    assert sorted(feats) == [2, 4, 8, 16, 32]
    for stride, f in feats.items():
        assert f.shape == (2, net.feature_channels[stride], 64 // stride, 96 // stride)
    assert net.feature_channels[32] == make_divisible(320 * width)


def test_mobilenet_v2_classifier():
    net = mobilenet_v2(0.5, num_classes=7).eval()
    with torch.no_grad():
        assert net.classify(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
    with pytest.raises(RuntimeError, match="without a classifier"):
        mobilenet_v2(0.5).classify(torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize("depth", [18, 50])
def test_resnet_channel_ratio_features(depth):
    net = resnet(depth, 0.25).eval()
    expansion = 1 if depth == 18 else 4
    assert net.feature_channels == {2: 16, 4: 16 * expansion, 8: 32 * expansion,
                                    16: 64 * expansion, 32: 128 * expansion}
    with torch.no_grad():
        feats = net(torch.zeros(1, 3, 64, 64))
    for stride, f in feats.items():
        assert f.shape == (1, net.feature_channels[stride], 64 // stride, 64 // stride)
    with torch.no_grad():
        assert resnet(depth, 0.25, num_classes=3).eval().classify(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"width_mult": 0}, "width_mult"), ({"width_mult": -1.0}, "width_mult"),
    ({"width_mult": "1"}, "width_mult"), ({"num_classes": 0}, "num_classes")])
def test_mobilenet_v2_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mobilenet_v2(**kwargs)


def test_resnet_and_builder_bad_arguments():
    with pytest.raises(ValueError, match="depth"):
        resnet(34)
    with pytest.raises(ValueError, match="channel_ratio"):
        resnet(18, 0.0)
    with pytest.raises(ValueError, match="backbone"):
        build_backbone("vgg16")


@pytest.mark.parametrize("shape, match", [((3, 64, 64), r"\(B, C, H, W\)"),
                                          ((1, 3, 64, 70), "multiples of 32")])
def test_bad_image_shapes(shape, match):
    for net in (mobilenet_v2(0.25), resnet(18, 0.25)):
        with pytest.raises(ValueError, match=match):
            net(torch.zeros(shape))
