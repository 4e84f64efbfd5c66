"""Tests of lmk.codecs: encoding, the four decoders, codec classes, degenerate input."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmk.codecs import dark_reference_loop
from lmk.codecs import (CODECS, METHODS, Codec, CoordinateCodec, HeatmapCodec, MarginalCodec, StageCodec,
                        build_codec, decode_heatmaps, decode_marginals, gaussian_heatmaps,
                        gaussian_marginals)
from lmk.quantization import expected_quantization_error, quantization_error

SIZE = (48, 64)  # (H, W): deliberately not square


def random_points(rng, shape, size=SIZE, margin=8.0):
    """Sub-pixel points at least ``margin`` cells from every border, ``shape + (2,)``."""
    h, w = size
    x = rng.uniform(margin, w - 1 - margin, shape)
    y = rng.uniform(margin, h - 1 - margin, shape)
    return np.stack([x, y], axis=-1)


def error(pred, gt):
    return np.linalg.norm(np.asarray(pred) - np.asarray(gt), axis=-1)


# ---------------------------------------------------------------------------------- encoding

def test_gaussian_heatmap_values_by_hand():
    hm = gaussian_heatmaps(np.array([[1.0, 2.0]]), (4, 3), sigma=1.0)
    assert hm.shape == (1, 4, 3)
    ys, xs = np.mgrid[0:4, 0:3]
    expected = np.exp(-((xs - 1.0) ** 2 + (ys - 2.0) ** 2) / 2.0)
    np.testing.assert_allclose(hm[0], expected, rtol=1e-12)
    assert hm[0, 2, 1] == 1.0  # the peak on a cell centre is exactly 1


def test_gaussian_heatmaps_shapes_and_kinds():
    pts = np.zeros((2, 3, 5, 2)) + 4.3
    assert gaussian_heatmaps(pts, SIZE, 2.0).shape == (2, 3, 5, 48, 64)
    assert gaussian_heatmaps(pts[0, 0], 16, 2.0).shape == (5, 16, 16)
    t = gaussian_heatmaps(torch.tensor(pts, dtype=torch.float32), SIZE, 2.0)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    hx, hy = gaussian_marginals(torch.tensor(pts), SIZE, 2.0)
    assert hx.shape == (2, 3, 5, 64) and hy.shape == (2, 3, 5, 48)
    assert isinstance(hx, torch.Tensor) and hx.dtype == torch.float64


def test_marginals_are_eq12_sums_up_to_a_constant():
    """Yin et al. Eq. 12: h^x = sum_y H(x, y); ours peaks at 1 instead (a per-landmark scale)."""
    pts = random_points(np.random.default_rng(0), (7,))
    hm = gaussian_heatmaps(pts, SIZE, 1.7)
    hx, hy = gaussian_marginals(pts, SIZE, 1.7)
    for ours, eq12 in ((hx, hm.sum(-2)), (hy, hm.sum(-1))):
        ratio = eq12 / ours
        np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones_like(ratio), rtol=1e-9)


# ------------------------------------------------------------------- decoders, clean heatmaps

@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_dark_recovers_subpixel_centres_2d(sigma):
    pts = random_points(np.random.default_rng(1), (4, 50))
    hm = gaussian_heatmaps(pts, SIZE, sigma)
    out = decode_heatmaps(hm, "dark", blur_sigma=sigma)
    assert error(out, pts).mean() < 0.01
    assert error(out, pts).max() < 0.01


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_dark_recovers_subpixel_centres_1d(sigma):
    pts = random_points(np.random.default_rng(2), (4, 50))
    hx, hy = gaussian_marginals(pts, SIZE, sigma)
    out = decode_marginals(hx, hy, "dark", blur_sigma=sigma)
    assert error(out, pts).mean() < 0.01


def test_dark_without_blur_is_exact_on_gaussians():
    """The log of a Gaussian is a quadratic, so one Newton step lands on the centre."""
    pts = random_points(np.random.default_rng(3), (30,))
    out = decode_heatmaps(gaussian_heatmaps(pts, SIZE, 1.5), "dark", blur_sigma=0.0)
    np.testing.assert_allclose(out, pts, atol=1e-9)


def test_argmax_error_is_the_quantization_error():
    """argmax returns the nearest cell centre: the centre-convention quantization error at
    L = F, per point, and on average the closed form 0.3826 cells."""
    pts = random_points(np.random.default_rng(4), (2000,))
    hm = gaussian_heatmaps(pts, SIZE, 1.5)
    out = decode_heatmaps(hm, "argmax")
    np.testing.assert_array_equal(out, np.round(pts))
    per_point = quantization_error(pts, 1, 1, convention="centre")
    np.testing.assert_allclose(error(out, pts), per_point, atol=1e-12)
    assert error(out, pts).mean() == pytest.approx(
        expected_quantization_error(1, 1, "centre"), abs=0.01)


def test_shift_lies_between_argmax_and_dark():
    pts = random_points(np.random.default_rng(5), (2000,))
    hm = gaussian_heatmaps(pts, SIZE, 2.0)
    e = {m: error(decode_heatmaps(hm, m, blur_sigma=2.0), pts).mean() for m in METHODS}
    assert e["dark"] < e["shift"] < e["argmax"]
    # per axis the shift error is uniform-like on [-0.25, 0.25] (+ the 0.25-0.5 tail): mean ~0.19
    assert 0.15 < e["shift"] < 0.23


def test_shift_by_hand():
    hm = np.zeros((1, 5, 5))
    hm[0, 2, 2], hm[0, 2, 3], hm[0, 2, 1], hm[0, 1, 2] = 1.0, 0.5, 0.2, 0.1
    np.testing.assert_allclose(decode_heatmaps(hm, "shift"), [[2.25, 1.75]])
    hm1 = np.array([[0.0, 0.3, 1.0, 0.6, 0.0]])
    out = decode_marginals(hm1, hm1[:, ::-1].copy(), "shift")
    np.testing.assert_allclose(out, [[2.25, 1.75]])


def test_soft_argmax_clean_and_unbiased_on_centred_noisy_peaks():
    pts = random_points(np.random.default_rng(6), (40,), margin=12)
    out = decode_heatmaps(gaussian_heatmaps(pts, SIZE, 1.5), "soft_argmax")
    assert error(out, pts).max() < 1e-6
    # noise pulls soft-argmax towards the map centre; a peak *at* the centre stays unbiased
    rng = np.random.default_rng(7)
    centre = np.array([(SIZE[1] - 1) / 2, (SIZE[0] - 1) / 2])
    hm = gaussian_heatmaps(np.tile(centre, (400, 1)), SIZE, 2.0)
    noisy = hm + 0.05 * rng.standard_normal(hm.shape)
    bias = (decode_heatmaps(noisy, "soft_argmax") - centre).mean(0)
    spread = (decode_heatmaps(noisy, "soft_argmax") - centre).std(0) / math.sqrt(400)
    assert np.all(np.abs(bias) < 4 * spread + 1e-3)


@pytest.mark.parametrize("method", METHODS)
def test_torch_and_numpy_agree(method):
    pts = random_points(np.random.default_rng(8), (2, 9))
    hm = gaussian_heatmaps(pts, SIZE, 2.0)
    a = decode_heatmaps(hm, method, blur_sigma=2.0)
    b = decode_heatmaps(torch.tensor(hm), method, blur_sigma=2.0)
    assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor) and b.shape == (2, 9, 2)
    np.testing.assert_allclose(a, b.numpy(), atol=1e-12)
    c = decode_heatmaps(torch.tensor(hm, dtype=torch.float32), method, blur_sigma=2.0)
    assert c.dtype == torch.float32
    np.testing.assert_allclose(c.numpy(), a, atol=2e-3)


def test_dark_1d_matches_2d_on_separable_maps():
    pts = random_points(np.random.default_rng(9), (20,))
    hx, hy = gaussian_marginals(pts, SIZE, 2.0)
    rng = np.random.default_rng(10)
    hx, hy = hx + 0.02 * rng.standard_normal(hx.shape), hy + 0.02 * rng.standard_normal(hy.shape)
    hm = hy[:, :, None] * hx[:, None, :]  # separable map: the 2D step decouples into 1D steps
    out2 = decode_heatmaps(hm, "dark", blur_sigma=0.0)
    out1 = decode_marginals(hx, hy, "dark", blur_sigma=0.0)
    ok = np.isfinite(out1).all(-1)
    np.testing.assert_allclose(out2[ok], out1[ok], atol=1e-6)


# ------------------------------------------------------- noisy heatmaps vs the reference DARK

@pytest.mark.parametrize("sigma,noise", [(1.0, 0.05), (2.0, 0.02), (2.0, 0.1), (2.0, 0.2),
                                         (3.0, 0.1), (3.0, 0.2)])
def test_dark_at_least_as_accurate_as_reference_loop(sigma, noise):
    rng = np.random.default_rng(11)
    pts = random_points(rng, (4, 68), size=(64, 64), margin=3)
    hm = gaussian_heatmaps(pts, (64, 64), sigma) + noise * rng.standard_normal((4, 68, 64, 64))
    ours = error(decode_heatmaps(hm, "dark", blur_sigma=sigma), pts)
    ref = error(dark_reference_loop(hm, sigma), pts)
    assert ours.mean() <= ref.mean() + 1e-9
    # identical wherever the reference's step is well defined
    assert np.median(np.abs(ours - ref)) < 1e-9


def test_decoders_ranked_on_noisy_heatmaps():
    rng = np.random.default_rng(12)
    pts = random_points(rng, (300,), size=(64, 64))
    hm = gaussian_heatmaps(pts, (64, 64), 2.0) + 0.05 * rng.standard_normal((300, 64, 64))
    e = {m: error(decode_heatmaps(hm, m, blur_sigma=2.0), pts).mean() for m in METHODS}
    assert e["dark"] < e["shift"] < e["argmax"] < e["soft_argmax"]


# ------------------------------------------------------------------------------- properties

@settings(max_examples=40, deadline=None)
@given(x=st.floats(18, 39), y=st.floats(18, 29), dx=st.integers(-6, 6), dy=st.integers(-6, 6),
       sigma=st.floats(1.0, 3.0), method=st.sampled_from(METHODS))
def test_decoding_is_equivariant_to_integer_shifts(x, y, dx, dy, sigma, method):
    """Away from the borders (>= 12 cells: the widest DARK window), shifting the map by whole
    cells shifts the decoded point by exactly as much."""
    rng = np.random.default_rng(0)
    noise = 0.02 * rng.standard_normal(SIZE)
    hm = gaussian_heatmaps(np.array([[x, y]]), SIZE, sigma) + noise
    shifted = np.roll(hm, (dy, dx), axis=(-2, -1))
    a = decode_heatmaps(hm, method, blur_sigma=sigma)
    b = decode_heatmaps(shifted, method, blur_sigma=sigma)
    if method == "soft_argmax":
        # rolls wrap the noise around, and a Gaussian cut by the border has a biased mean:
        # compare clean, narrow maps (>= 5 sigma from every border)
        hm = gaussian_heatmaps(np.array([[x, y]]), SIZE, min(sigma, 1.5))
        a = decode_heatmaps(hm, method)
        b = decode_heatmaps(np.roll(hm, (dy, dx), axis=(-2, -1)), method)
        np.testing.assert_allclose(b - a, [[dx, dy]], atol=1e-3)
    else:
        np.testing.assert_allclose(b - a, [[dx, dy]], atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(x=st.floats(20, 43), dx=st.integers(-8, 8), sigma=st.floats(1.0, 3.0),
       method=st.sampled_from(METHODS))
def test_1d_decoding_is_equivariant_to_integer_shifts(x, dx, sigma, method):
    if method == "soft_argmax":
        sigma = min(sigma, 1.5)  # a Gaussian cut by the border has a biased mean
    hx, hy = gaussian_marginals(np.array([[x, 20.0]]), SIZE, sigma)
    a = decode_marginals(hx, hy, method, blur_sigma=sigma)
    b = decode_marginals(np.roll(hx, dx, axis=-1), hy, method, blur_sigma=sigma)
    np.testing.assert_allclose(b - a, [[dx, 0.0]], atol=1e-6)


# ------------------------------------------------------------------------------ codecs

def every_codec(input_size=(256, 192)):
    """One codec of each representation, built through the same constructor arguments."""
    return [HeatmapCodec(input_size, (64, 48), sigma=2.0), MarginalCodec(input_size, (64, 48)),
            CoordinateCodec(input_size)]


def test_every_codec_class_is_in_the_table():
    # StageCodec reads one stage of a list of estimates: tests/test_stage_codec.py covers it
    assert {type(c) for c in every_codec()} | {StageCodec} == set(CODECS.values())
    assert all(issubclass(cls, Codec) for cls in CODECS.values())
    assert not issubclass(MarginalCodec, HeatmapCodec)   # siblings, one contract


@pytest.mark.parametrize("codec", every_codec(), ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_every_codec_round_trips_through_one_code_path(codec, kind):
    """The same lines for every representation: decode(encode(landmarks)) == landmarks."""
    lm = random_points(np.random.default_rng(13), (3, 68), size=(256, 192), margin=40)
    if kind == "torch":
        lm = torch.tensor(lm)
    targets = codec.encode(lm)
    out = codec.decode(targets)
    out_c, conf = codec.decode(targets, return_confidence=True)
    assert type(out) is type(lm) and type(conf) is type(lm)
    assert out.shape == lm.shape and conf.shape == (3, 68)
    assert error(out, lm).max() < 0.01                    # input pixels, noiseless targets
    np.testing.assert_array_equal(np.asarray(out_c), np.asarray(out))


def test_confidence_of_each_codec():
    lm = random_points(np.random.default_rng(13), (3, 68), size=(256, 192), margin=40)
    heat, marg, coord = every_codec()
    for codec in (heat, marg):   # the peak of a noiseless target, 1 at best
        _, conf = codec.decode(codec.encode(lm), return_confidence=True)
        assert np.all((conf > 0.8) & (conf <= 1.0))
    _, conf = coord.decode(coord.encode(lm), return_confidence=True)
    assert np.isnan(conf).all()        # a regression head states no confidence


def test_marginal_targets_and_outputs_are_one_pair():
    codec = MarginalCodec(64, (16, 24), 1.5)
    hx, hy = codec.encode(np.full((2, 5, 2), 30.0))
    assert hx.shape == (2, 5, 24) and hy.shape == (2, 5, 16)
    np.testing.assert_array_equal(codec.decode([hx, hy]), codec.decode((hx, hy)))
    with pytest.raises(ValueError, match=r"takes the pair \(hx, hy\).*ndarray of shape \(2, 5, 24\)"):
        codec.decode(hx)
    with pytest.raises(TypeError, match=r"return_confidence must be a bool.*pair \(hx, hy\)"):
        codec.decode(hx, hy)    # the old two-argument call


@pytest.mark.parametrize("codec", every_codec(), ids=lambda c: type(c).__name__)
def test_config_rebuilds_an_equal_codec(codec):
    import json

    config = json.loads(json.dumps(codec.config()))  # as a manifest would store it
    assert config == codec.config() and config["type"] == codec.kind
    rebuilt = build_codec(config)
    assert rebuilt == codec and type(rebuilt) is type(codec) and repr(rebuilt) == repr(codec)
    assert hash(rebuilt) == hash(codec)
    assert rebuilt is not codec and rebuilt.config() is not config


def test_replace_and_repr():
    codec = HeatmapCodec(np.int64(64), np.int32(16), 1.5)
    assert repr(codec) == "HeatmapCodec(input_size=(64, 64), heatmap_size=(16, 16), sigma=1.5, method='dark')"
    argmax = codec.replace(method="argmax")
    assert argmax.method == "argmax" and argmax != codec and codec.method == "dark"
    assert repr(CoordinateCodec((100, 200))) == "CoordinateCodec(input_size=(100, 200))"
    assert HeatmapCodec(64, 16, 1.5) != MarginalCodec(64, 16, 1.5)


def test_build_codec_errors():
    with pytest.raises(ValueError, match="'type'"):
        build_codec({"input_size": 64})
    with pytest.raises(ValueError, match=r"unknown codec type 'heatmaps'.*'heatmap', 'marginal'"):
        build_codec({"type": "heatmaps", "input_size": 64})
    with pytest.raises(ValueError, match=r"CoordinateCodec takes .*unknown \['sigma'\]"):
        build_codec({"type": "coordinate", "input_size": 64, "sigma": 2.0})
    with pytest.raises(ValueError, match="heatmap_size"):
        build_codec({"type": "heatmap", "input_size": 64, "heatmap_size": 5.9})


def test_sizes_are_checked_in_one_place():
    """numpy integers are ints everywhere; 5.9 (or 64.0) is an error naming the argument."""
    assert HeatmapCodec(np.int64(64), (np.int64(16), 16)).heatmap_size == (16, 16)
    assert CoordinateCodec(np.array([64, 32])).input_size == (64, 32)
    assert gaussian_heatmaps(np.zeros((1, 2)), np.int64(8), 1.0).shape == (1, 8, 8)
    for make, name in ((lambda: HeatmapCodec(5.9, 16), "input_size"),
                       (lambda: MarginalCodec(64, (16, 5.9)), "heatmap_size"),
                       (lambda: CoordinateCodec(64.0), "input_size"),
                       (lambda: gaussian_marginals(np.zeros((1, 2)), 5.9, 1.0), "size")):
        with pytest.raises(ValueError, match=rf"^{name} must be a positive int"):
            make()


def test_integer_points_are_encoded_in_float32():
    lm = np.array([[10, 20]], dtype=np.int64)
    assert gaussian_heatmaps(lm, 32, 1.0).dtype == np.float32
    assert HeatmapCodec(64, 32).encode(lm).dtype == np.float32
    assert CoordinateCodec(64).encode(torch.tensor(lm)).dtype == torch.float32


def test_heatmap_codec_uses_the_pixel_centre_convention():
    codec = HeatmapCodec((8, 4), (4, 2), sigma=1.0, method="argmax")
    # input x = 1.5 is the edge between input pixels 1 and 2 = the centre of heatmap cell 0;
    # input y = 5.5 likewise maps to heatmap y = 2.5, halfway between cells 2 and 3
    np.testing.assert_allclose(codec.to_heatmap(np.array([[1.5, 5.5]])), [[0.5, 2.5]])
    np.testing.assert_allclose(codec.to_input(np.array([[0.0, 1.0]])), [[0.5, 2.5]])
    hm = codec.encode(np.array([[1.5, 5.5]]))[0]
    assert hm[2, 0] == hm[2, 1] == hm[3, 0] == hm[3, 1] == hm.max()


def test_coordinate_codec():
    codec = CoordinateCodec((100, 200))
    edges = np.array([[-0.5, -0.5], [199.5, 99.5], [99.5, 49.5]])
    np.testing.assert_allclose(codec.encode(edges), [[-1, -1], [1, 1], [0, 0]], atol=1e-12)
    lm = np.random.default_rng(14).uniform(0, 99, (5, 68, 2))
    np.testing.assert_allclose(codec.decode(codec.encode(lm)), lm, atol=1e-10)
    t = codec.encode(torch.tensor(lm, dtype=torch.float32))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    # the same convention as grid_sample(align_corners=False): sampling an image at the
    # normalised coordinate of pixel (i, j) returns that pixel exactly
    img = torch.arange(100 * 200, dtype=torch.float64).reshape(1, 1, 100, 200)
    grid = codec.encode(np.array([[[37.0, 12.0]]]))
    val = torch.nn.functional.grid_sample(img, torch.tensor(grid)[None], align_corners=False)
    assert val.item() == img[0, 0, 12, 37].item()


def test_confidence_is_the_peak_value():
    pts = np.array([[10.0, 10.0], [20.3, 15.6]])
    hm = gaussian_heatmaps(pts, SIZE, 2.0) * np.array([0.7, 0.4])[:, None, None]
    _, conf = decode_heatmaps(hm, "dark", return_confidence=True)
    np.testing.assert_allclose(conf, hm.reshape(2, -1).max(-1))
    hx, hy = gaussian_marginals(pts, SIZE, 2.0)
    _, conf1 = decode_marginals(hx * 0.5, hy, return_confidence=True)
    np.testing.assert_allclose(conf1, 0.5 * hx.max(-1))  # min over the two axes


# ---------------------------------------------------------------------- degenerate input

@pytest.mark.parametrize("method", METHODS)
def test_flat_maps_decode_to_nan(method):
    hm = np.zeros((2, 3, 16, 16))
    hm[1, 2] = 0.25  # constant map
    hm[0, 1] = gaussian_heatmaps(np.array([[5.2, 7.9]]), 16, 1.5)[0]  # one real map
    out, conf = decode_heatmaps(hm, method, blur_sigma=1.5, return_confidence=True)
    assert np.isnan(out[0, 0]).all() and np.isnan(out[1, 2]).all()
    assert np.isfinite(out[0, 1]).all()
    assert conf[1, 2] == 0.25 and conf[0, 0] == 0.0
    hx = np.zeros((1, 16))
    assert np.isnan(decode_marginals(hx, hx, method)).all()


def test_a_plateau_is_not_a_flat_map():
    hm = np.zeros((1, 16, 16))
    hm[0, 6:9, 4:7] = 1.0  # 3 x 3 plateau: a peak, but locally flat
    out = decode_heatmaps(hm, "argmax")
    np.testing.assert_array_equal(out, [[4.0, 6.0]])  # first column, then first row


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_maps_decode_to_nan(method, bad):
    hm = gaussian_heatmaps(np.array([[5.0, 5.0], [9.0, 9.0]]), 16, 1.5)
    hm[0, 12, 3] = bad
    out, conf = decode_heatmaps(hm, method, return_confidence=True)
    assert np.isnan(out[0]).all() and np.isnan(conf[0])
    assert np.isfinite(out[1]).all()


def test_minus_inf_is_just_a_low_value():
    hm = gaussian_heatmaps(np.array([[7.3, 8.6]]), 16, 1.5)
    hm[0, 0, 0] = -np.inf
    np.testing.assert_allclose(decode_heatmaps(hm, "dark", blur_sigma=1.5), [[7.3, 8.6]],
                               atol=0.01)


def test_dark_at_the_border_falls_back_to_shift():
    pts = np.array([[0.3, 10.0], [15.0, 1.2], [8.0, 8.0]])
    hm = gaussian_heatmaps(pts, 16, 1.5)
    dark = decode_heatmaps(hm, "dark", blur_sigma=1.5)
    shift = decode_heatmaps(hm, "shift")
    np.testing.assert_allclose(dark[:2], shift[:2])
    assert error(dark[2], pts[2]) < 0.01


def test_dark_on_negative_maps_does_not_take_a_step():
    hm = -gaussian_heatmaps(np.array([[8.0, 8.0]]), 16, 1.5) + 0.0
    hm[0, 8, 8] = 0.5  # a spike above a negative bowl: log undefined around it
    out = decode_heatmaps(hm, "dark", blur_sigma=1.0)
    np.testing.assert_allclose(out, decode_heatmaps(hm, "shift"))


def test_empty_batches():
    assert decode_heatmaps(np.zeros((0, 68, 8, 8))).shape == (0, 68, 2)
    assert decode_heatmaps(torch.zeros(4, 0, 8, 8)).shape == (4, 0, 2)
    out, conf = decode_marginals(np.zeros((0, 5, 8)), np.zeros((0, 5, 6)),
                                 return_confidence=True)
    assert out.shape == (0, 5, 2) and conf.shape == (0, 5)
    assert gaussian_heatmaps(np.zeros((0, 2)), 8, 1.0).shape == (0, 8, 8)


@pytest.mark.parametrize("shape", [(8, 8), (8,)])
def test_decode_wrong_ndim_raises(shape):
    with pytest.raises(ValueError, match=r"heatmaps must have shape \(\.\.\., N, H, W\)"):
        decode_heatmaps(np.zeros(shape))


def test_decode_argument_errors():
    with pytest.raises(ValueError, match="empty spatial axis"):
        decode_heatmaps(np.zeros((1, 0, 8)))
    with pytest.raises(ValueError, match="method must be one of"):
        decode_heatmaps(np.zeros((1, 8, 8)), "mean")
    with pytest.raises(ValueError, match="blur_sigma"):
        decode_heatmaps(np.zeros((1, 8, 8)), blur_sigma=-1.0)
    with pytest.raises(ValueError, match=r"hx \(\.\.\., N, W\) and hy"):
        decode_marginals(np.zeros((2, 8)), np.zeros((3, 8)))
    with pytest.raises(ValueError, match=r"hx must have shape \(\.\.\., N, L\)"):
        decode_marginals(np.zeros(8), np.zeros((1, 8)))


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), float("inf")])
def test_sigma_must_be_positive(sigma):
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        gaussian_heatmaps(np.zeros((1, 2)), 8, sigma)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_marginals(np.zeros((1, 2)), 8, sigma)
    with pytest.raises(ValueError, match="sigma"):
        HeatmapCodec(32, 8, sigma)


def test_encode_errors():
    with pytest.raises(ValueError, match=r"points must have shape \(\.\.\., N, 2\)"):
        gaussian_heatmaps(np.zeros((3, 3)), 8, 1.0)
    with pytest.raises(ValueError, match=r"points must have shape"):
        gaussian_heatmaps(np.zeros(2), 8, 1.0)
    with pytest.raises(ValueError, match="points must be finite"):
        gaussian_heatmaps(np.array([[1.0, np.nan]]), 8, 1.0)
    with pytest.raises(ValueError, match="size must be"):
        gaussian_heatmaps(np.zeros((1, 2)), (8, 0), 1.0)
    with pytest.raises(ValueError, match="size must be"):
        gaussian_marginals(np.zeros((1, 2)), (8, 8, 8), 1.0)
    with pytest.raises(TypeError, match="sigma must be a real number"):
        gaussian_heatmaps(np.zeros((1, 2)), 8, "2")


def test_codec_shape_errors():
    codec = HeatmapCodec(64, 16, 1.5)
    with pytest.raises(ValueError, match=r"heatmaps must have shape \(\.\.\., N, 16, 16\)"):
        codec.decode(np.zeros((1, 68, 32, 32)))
    mcodec = MarginalCodec(64, (16, 24), 1.5)
    with pytest.raises(ValueError, match=r"expected hx \(\.\.\., N, 24\) and hy \(\.\.\., N, 16\)"):
        mcodec.decode((np.zeros((1, 68, 16)), np.zeros((1, 68, 16))))
    with pytest.raises(ValueError, match="input_size"):
        CoordinateCodec((0, 5))
    with pytest.raises(ValueError, match=r"outputs must have shape \(\.\.\., N, 2\)"):
        CoordinateCodec(64).decode(np.zeros((4, 136)))
    with pytest.raises(ValueError, match="method must be one of"):
        HeatmapCodec(64, 16, 1.5, method="median")


# ------------------------------------------------------------------------------ gradients

def test_gradients_by_gradcheck():
    """Encoding is differentiable in the points, soft-argmax and DARK in the map values (the
    map is lifted by 0.1 so that finite differences never cross the kink of max(h, 0))."""
    pts = torch.tensor([[5.3, 4.7]], dtype=torch.float64, requires_grad=True)
    check = dict(fast_mode=True)
    assert torch.autograd.gradcheck(lambda q: gaussian_heatmaps(q, 10, 1.5), (pts,), **check)
    assert torch.autograd.gradcheck(lambda q: gaussian_marginals(q, 10, 1.5), (pts,), **check)
    hm = (gaussian_heatmaps(pts.detach(), 10, 1.5) + 0.1).requires_grad_(True)
    for method in ("soft_argmax", "dark"):
        assert torch.autograd.gradcheck(lambda h: decode_heatmaps(h, method, blur_sigma=1.0),
                                        (hm,), **check)
    hx, hy = (h + 0.1 for h in gaussian_marginals(pts.detach(), 10, 1.5))
    hx.requires_grad_(True)
    hy.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: decode_marginals(a, b, "soft_argmax"), (hx, hy),
                                    **check)


def test_decode_of_encode_has_identity_jacobian():
    pts = torch.tensor([[20.3, 17.6]], dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(
        lambda q: decode_heatmaps(gaussian_heatmaps(q, SIZE, 2.0), "dark", blur_sigma=2.0), pts)
    np.testing.assert_allclose(jac.reshape(2, 2), np.eye(2), atol=1e-3)


def test_dark_1d_at_least_as_accurate_as_a_reference_loop():
    """1D DARK against a plain loop: blur (zero padding), log, Newton step at the argmax."""
    import cv2

    rng = np.random.default_rng(15)
    sigma, n, length = 2.0, 300, 64
    x = rng.uniform(3, length - 4, n)
    hx, _ = gaussian_marginals(np.stack([x, x], -1), length, sigma)
    hx = hx + 0.05 * rng.standard_normal(hx.shape)
    r = math.ceil(3 * sigma)
    ref = np.empty(n)
    for i in range(n):
        m = int(np.argmax(hx[i]))
        padded = np.pad(hx[i], r)[None]
        lg = np.log(np.maximum(cv2.GaussianBlur(padded, (2 * r + 1, 1), sigma)[0, r:-r], 1e-10))
        ref[i] = m
        if 1 < m < length - 2:
            d, dd = 0.5 * (lg[m + 1] - lg[m - 1]), 0.25 * (lg[m + 2] - 2 * lg[m] + lg[m - 2])
            ref[i] = m - d / dd if dd != 0 else m
    ours = decode_marginals(hx, hx, "dark", blur_sigma=sigma)[:, 0]
    assert np.abs(ours - x).mean() <= np.abs(ref - x).mean() + 1e-9
    assert np.median(np.abs(ours - ref)) < 1e-9
