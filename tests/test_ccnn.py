"""lmk.models.ccnn: Mahpod et al. (2018) CCNN shapes, units, identity start, gradients, errors."""

import pytest
import torch

from lmk.codecs import decode_heatmaps
from lmk.geometry import rescale_points
from lmk.models.ccnn import CCNN, RegressionUnit

WIDTH = 0.125          # 8 channels where the paper has 64: fast on a CPU


def _images(b=2, size=32, seed=0):
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_shapes_for_every_number_of_cascades(k):
    torch.manual_seed(0)
    model = CCNN(k, num_landmarks=5, width=WIDTH)
    out = model(_images(size=32))
    assert out["base_heatmaps"].shape == (2, 5, 8, 8)              # 1/4 resolution
    for key in ("heatmaps", "maxima", "coordinates"):
        assert len(out[key]) == k, key
    assert all(h.shape == (2, 5, 8, 8) for h in out["heatmaps"])
    assert all(p.shape == (2, 5, 2) for p in out["maxima"] + out["coordinates"])
    assert len(model.heatmap_units) == len(model.regression_units) == k
    # a non-square input: heatmaps follow each axis
    wide = CCNN(k, num_landmarks=5, width=WIDTH)(_images(2, 32)[..., :24])
    assert wide["heatmaps"][-1].shape == (2, 5, 8, 6)


def test_paper_configuration_parameter_count():
    """Width 1, K = 4, N = 68 (Tables 2-4). The paper does not state a parameter count; the
    figure is reported here (``-s``) and bounded loosely so an accidental change of a table shows."""
    model = CCNN(4, 68, width=1.0)
    parts = {name: sum(p.numel() for p in getattr(model, name).parameters())
             for name in ("base1", "base2", "heatmap_units", "regression_units")}
    total = sum(p.numel() for p in model.parameters())
    print(f"\nCCNN width 1, K=4: {total:,} parameters ({parts}); Mahpod et al. (2018) give none")
    assert sum(parts.values()) == total
    # B2 alone: 13 x 13 x 64 x 64 weights per heatmap unit, the widest kernel of the paper
    b2 = model.heatmap_units[0].layers[1][0]
    assert b2.weight.shape == (64, 64, 13, 13)
    assert 40e6 < total < 50e6
    # the regression cascade holds most of it: C5 alone is 3 x 3 x 512 x 1024 per unit
    assert parts["regression_units"] > 0.7 * total
    one_fewer = sum(p.numel() for p in CCNN(3, 68, width=1.0).parameters())
    assert total - one_fewer == (parts["heatmap_units"] + parts["regression_units"]) // 4


def test_untrained_regression_units_are_the_identity_on_the_maxima():
    """C6 starts at zero, so P_k = argmax(H_k) mapped to input pixels, exactly."""
    torch.manual_seed(1)
    model = CCNN(3, num_landmarks=4, width=WIDTH).eval()
    out = model(_images(2, 32, seed=1))
    for h, maxima, coords in zip(out["heatmaps"], out["maxima"], out["coordinates"]):
        cells = decode_heatmaps(h, "argmax")
        expected = rescale_points(cells, 4)                          # cell i -> 4 i + 1.5
        torch.testing.assert_close(coords, expected, rtol=0, atol=0)
        torch.testing.assert_close(maxima, expected, rtol=0, atol=0)
        # an independent argmax: flat index of the largest value of each map
        flat = h.flatten(-2).argmax(-1)
        torch.testing.assert_close(coords[..., 0], (flat % h.shape[-1]).float() * 4 + 1.5)
        torch.testing.assert_close(coords[..., 1], (flat // h.shape[-1]).float() * 4 + 1.5)


def test_refinement_is_added_in_heatmap_cells():
    """With C6's bias set to (dx, dy) = (0.25, -0.5) cells, every point moves by 4x that."""
    torch.manual_seed(2)
    model = CCNN(2, num_landmarks=3, width=WIDTH).eval()
    last = model.regression_units[1].regress[-1]
    with torch.no_grad():
        last.bias.copy_(torch.tensor([0.25, -0.5] * 3))
    out = model(_images(1, 32, seed=2))
    torch.testing.assert_close(out["coordinates"][1] - out["maxima"][1],
                               torch.tensor([1.0, -2.0]).expand(1, 3, 2))
    torch.testing.assert_close(out["coordinates"][0], out["maxima"][0])     # unit 1 untouched


def test_gradient_reaches_the_first_layers_of_both_base_cnns():
    torch.manual_seed(3)
    model = CCNN(2, num_landmarks=3, width=WIDTH)
    images = _images(2, 32, seed=3)
    first1 = model.base1.features[0][0].weight
    first2 = model.base2.features[0][0].weight
    # at initialisation only C6 gets a gradient from the coordinates (its weights are zero) ...
    model(images)["coordinates"][-1].square().sum().backward()
    assert first1.grad is None or first1.grad.abs().max() == 0
    c6 = model.regression_units[-1].regress[-1]
    assert c6.weight.grad.abs().max() > 0
    # ... after one step the final coordinates reach the first layer of both base CNNs
    torch.optim.SGD(model.parameters(), lr=1e-2).step()
    model.zero_grad()
    model(images)["coordinates"][-1].square().sum().backward()
    assert first1.grad.abs().max() > 0
    assert first2.grad.abs().max() > 0
    # the maxima carry no gradient: the argmax is piecewise constant
    assert not model(images)["maxima"][0].requires_grad


def test_regression_unit_chains_the_previous_features():
    torch.manual_seed(4)
    unit = RegressionUnit(6, num_landmarks=2, width=WIDTH).eval()
    with torch.no_grad():
        torch.nn.init.normal_(unit.regress[-1].weight)
    x = torch.randn(1, 6, 16, 16)
    e, delta = unit(x, None)
    assert e.shape == (1, unit.channels, 2, 2) and delta.shape == (1, 2, 2)
    _, same = unit(x, torch.zeros_like(e))                  # E_0 = 0 for the first unit
    torch.testing.assert_close(delta, same)
    _, other = unit(x, torch.ones_like(e))
    assert (other - delta).abs().max() > 0


@pytest.mark.parametrize("k", [0, 5, -1, 2.0, True, "4"])
def test_bad_number_of_cascades_raises(k):
    with pytest.raises(ValueError, match="num_cascades"):
        CCNN(k, width=WIDTH)


def test_bad_arguments_and_inputs_raise():
    with pytest.raises(ValueError, match="width must be a positive number"):
        CCNN(1, width=0)
    with pytest.raises(ValueError, match="num_landmarks"):
        CCNN(1, num_landmarks=0, width=WIDTH)
    model = CCNN(1, num_landmarks=2, width=WIDTH)
    with pytest.raises(ValueError, match=r"multiples of 4"):
        model(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match=r"images must have shape \(B, 3, H, W\)"):
        model(torch.zeros(3, 32, 32))
