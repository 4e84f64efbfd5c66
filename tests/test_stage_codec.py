"""StageCodec: reading one estimate of a multi-stage refinement model (FFLD, CCNN)."""

import numpy as np
import pytest
import torch

from lmk.codecs import StageCodec, build_codec
from lmk.models.ccnn import CCNN
from lmk.models.ffld import FFLD


def _stages(k=4, n=5):
    return [torch.full((2, n, 2), float(i)) for i in range(k)]


def test_ffld_list_and_dict_outputs_give_the_chosen_stage():
    est = _stages()
    for k in range(4):
        assert torch.equal(StageCodec(64, f"stage{k}").decode(est), est[k])
        assert torch.equal(StageCodec(64, f"stage{k}").decode({"points": est, "features": [None] * 4}), est[k])
    assert torch.equal(StageCodec(64).decode(est), est[-1])                        # "last"


def test_ccnn_units_count_from_one_and_argmax_reads_the_maxima():
    out = {"coordinates": _stages(3), "maxima": [10 + s for s in _stages(3)], "heatmaps": []}
    assert torch.equal(StageCodec(64, "unit1").decode(out), out["coordinates"][0])
    assert torch.equal(StageCodec(64, "unit3").decode(out), out["coordinates"][2])
    assert torch.equal(StageCodec(64, "argmax2").decode(out), out["maxima"][1])
    assert torch.equal(StageCodec(64, "last").decode(out), out["coordinates"][-1])


def test_real_models_decode_to_input_pixels():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ffld = FFLD(68, stages=2, channel_ratio=0.125, patch_size=3, width=8).eval()(x)
        ccnn = CCNN(2, 68, width=0.125).eval()(x)
    assert StageCodec(64, "stage2").decode(ffld).shape == (2, 68, 2)
    assert torch.equal(StageCodec(64, "unit2").decode(ccnn), ccnn["coordinates"][1])


def test_numpy_in_numpy_out_no_confidence_and_encode_is_the_identity():
    est = [np.zeros((3, 4, 2)), np.ones((3, 4, 2))]
    points, conf = StageCodec(32, "stage1").decode(est, return_confidence=True)
    assert isinstance(points, np.ndarray) and np.array_equal(points, est[1])
    assert conf.shape == (3, 4) and np.isnan(conf).all()
    pts = np.random.default_rng(0).uniform(0, 31, (3, 4, 2))
    np.testing.assert_array_equal(StageCodec(32).encode(pts), pts)


def test_config_round_trip():
    codec = StageCodec(48, "unit2")
    assert build_codec(codec.config()) == codec
    assert codec.replace(method="argmax1").method == "argmax1"


@pytest.mark.parametrize("method", ["stage", "unitx", "best", 3, "argmax-1"])
def test_bad_method_names_the_forms(method):
    with pytest.raises(ValueError, match="stageK"):
        StageCodec(64, method)


def test_out_of_range_or_wrong_outputs_name_what_exists():
    with pytest.raises(ValueError, match=r"4 estimates \(stage0, stage1, stage2, stage3\)"):
        StageCodec(64, "stage4").decode(_stages())
    with pytest.raises(ValueError, match=r"unit0"):
        StageCodec(64, "unit0").decode({"coordinates": _stages(2)})
    with pytest.raises(ValueError, match="maxima"):
        StageCodec(64, "argmax1").decode({"points": _stages(2)})
    with pytest.raises(ValueError, match="list of per-stage"):
        StageCodec(64, "unit1").decode(_stages(2))
    with pytest.raises(ValueError, match=r"\(\.\.\., N, 2\)"):
        StageCodec(64, "stage0").decode([torch.zeros(2, 5, 3)])
