"""lmk.cascade_eval: the CCNN's shape table, per-unit errors and paired verdicts across seeds."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from lmk import complexity, recipes
from lmk.lessons import n05_cascade as cascade_eval
from lmk.compare import paired_verdict, verdict
from lmk.models.ccnn import CCNN

WIDTH = 0.125


def _conv_macs(conv: nn.Conv2d, out_hw) -> int:
    """Multiply-accumulates of one convolution by hand: output pixels x kernel taps x channels."""
    kh, kw = conv.kernel_size
    return out_hw[0] * out_hw[1] * conv.out_channels * (conv.in_channels // conv.groups) * kh * kw


@pytest.mark.parametrize("k", [1, 3])
def test_shape_table_follows_tables_2_to_4(k):
    torch.manual_seed(0)
    model = CCNN(k, num_landmarks=5, width=WIDTH)
    rows = cascade_eval.ccnn_shape_table(model, (32, 32))
    assert len(rows) == 3 + 3 * k
    by_part = {r["part"]: r for r in rows}
    c = model.base1.channels                                    # 16 at width 1/8
    assert by_part["BaseCNN_1 A1-A7"]["input"] == (3, 32, 32)
    assert by_part["BaseCNN_1 A1-A7"]["output"] == (c, 8, 8)    # 1/4 resolution
    assert by_part["BaseCNN_2 A8-A12"]["output"] == (5, 8, 8)   # H0: one map per landmark
    for unit in range(1, k + 1):
        assert by_part[f"heatmap unit {unit} B1-B4"]["input"] == (c + 5, 8, 8)      # F2 + H_{k-1}
        assert by_part[f"heatmap unit {unit} B1-B4"]["output"] == (5, 8, 8)
        assert by_part[f"regression unit {unit} C1-C3"]["input"] == (2 * c + 2 * 5, 8, 8)  # Eq. 2
        e = model.regression_units[0].channels
        assert by_part[f"regression unit {unit} C1-C3"]["output"] == (e, 1, 1)      # three stride-2 convs
        assert by_part[f"regression unit {unit} C4-C6"]["input"] == (2 * e, 1, 1)   # E_k + E_{k-1}
        assert by_part[f"regression unit {unit} C4-C6"]["output"] == (2 * 5, 1, 1)  # dP_k
    # the forward's order: heatmap unit k, then its regression unit
    assert [r["part"] for r in rows][3:6] == ["heatmap unit 1 B1-B4", "regression unit 1 C1-C3",
                                              "regression unit 1 C4-C6"]
    # every parameter belongs to exactly one part
    assert sum(r["params"] for r in rows) == complexity.count_parameters(model)


def test_shape_table_macs_match_a_hand_count():
    model = CCNN(1, num_landmarks=3, width=WIDTH)
    rows = {r["part"]: r for r in cascade_eval.ccnn_shape_table(model, (16, 16))}
    unit = model.heatmap_units[0].layers
    hand = sum(_conv_macs(block[0] if isinstance(block, nn.Sequential) else block, (4, 4))
               for block in unit)                              # B1-B4 all keep the 4 x 4 map
    assert rows["heatmap unit 1 B1-B4"]["macs"] == hand
    # B2's 13 x 13 kernel: 4 * 4 * 8 * 8 * 169 MACs on its own
    assert _conv_macs(unit[1][0], (4, 4)) == 4 * 4 * 8 * 8 * 169
    # the parts add up to the whole network's count
    total = complexity.profile(model, (1, 3, 16, 16), device="cpu")["macs"]
    assert sum(r["macs"] for r in rows.values()) == total


def test_shape_table_leaves_the_model_as_it_was():
    model = CCNN(2, num_landmarks=3, width=WIDTH).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cascade_eval.ccnn_shape_table(model, (16, 16))
    assert model.training
    assert not any(m._forward_hooks for m in model.modules())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k          # eval mode: BatchNorm statistics untouched


@pytest.mark.parametrize("size", [(16,), (0, 16), "16x16", (16.0, 16)])
def test_shape_table_rejects_bad_input_size(size):
    with pytest.raises(ValueError, match="input_size"):
        cascade_eval.ccnn_shape_table(CCNN(1, 3, width=WIDTH), size)


def test_shape_table_rejects_other_models():
    with pytest.raises(TypeError, match="CCNN"):
        cascade_eval.ccnn_shape_table(nn.Conv2d(3, 3, 1))


def test_cost_rows_match_profile_at_each_scale():
    rows = cascade_eval.cost_rows({"K=1": "n05_ccnn_k1"}, scales=("zoo",))
    assert rows[0]["zoo input"] == 64
    model = CCNN(1, 68, width=recipes.configure("n05_ccnn_k1", "zoo")["model_args"]["width"])
    assert rows[0]["zoo params"] == complexity.count_parameters(model)
    macs = complexity.profile(model, (1, 3, 64, 64), device="cpu")["macs"]
    assert math.isclose(rows[0]["zoo GMACs"], macs / 1e9)


def _outcome(k, nmes: dict, seed_shift=0.0):
    methods = {m: {"nme": v + seed_shift, "auc": 1 - 10 * (v + seed_shift), "failure_rate": 0.0}
               for m, v in nmes.items()}
    return {"config": {"model_args": {"num_cascades": k}}, "methods": methods}


def _two_unit_seeds():
    """Three seeds of a K=2 model: refinement helps by ~1 point, the second unit by ~0.1."""
    base = {"argmax1": 0.050, "unit1": 0.040, "argmax2": 0.049, "unit2": 0.039}
    return [_outcome(2, {**base, "unit2": 0.039 + d}, s) for s, d in
            ((0.000, 0.000), (0.004, 0.0005), (-0.003, -0.0004))]


def test_per_decoder_gathers_each_seed():
    out = cascade_eval.per_decoder(_two_unit_seeds())
    np.testing.assert_allclose(out["unit1"], [0.040, 0.044, 0.037])
    np.testing.assert_allclose(out["unit2"], [0.039, 0.0435, 0.0356])
    auc = cascade_eval.per_decoder(_two_unit_seeds(), "auc")
    np.testing.assert_allclose(auc["argmax1"], [0.5, 0.46, 0.53])


def test_per_decoder_errors():
    with pytest.raises(ValueError, match="at least one"):
        cascade_eval.per_decoder([])
    with pytest.raises(ValueError, match="metric"):
        cascade_eval.per_decoder(_two_unit_seeds(), "nmee")
    a, b = _outcome(1, {"unit1": 0.1}), _outcome(1, {"argmax1": 0.1})
    with pytest.raises(ValueError, match="share no decoder"):
        cascade_eval.per_decoder([a, b])


def test_unit_rows_average_the_seeds():
    rows = cascade_eval.unit_rows(_two_unit_seeds())
    assert [r["unit"] for r in rows] == [1, 2] and rows[0]["seeds"] == 3
    assert math.isclose(rows[0]["refined NME %"], 100 * np.mean([0.040, 0.044, 0.037]))
    assert math.isclose(rows[1]["argmax NME %"], 100 * np.mean([0.049, 0.053, 0.046]))
    assert math.isclose(rows[0]["argmax AUC %"], 100 * np.mean([0.5, 0.46, 0.53]))


def test_unit_rows_need_one_number_of_cascades():
    mixed = [_outcome(1, {"argmax1": 0.1, "unit1": 0.1}), _outcome(2, {"argmax1": 0.1, "unit1": 0.1})]
    with pytest.raises(ValueError, match="number of cascades"):
        cascade_eval.unit_rows(mixed)


def test_paired_verdict_is_the_test_on_per_seed_differences():
    # a constant shift hidden in a large seed-to-seed spread: unpaired it is noise, paired it is not
    a = np.array([0.030, 0.040, 0.050])
    b = a + 0.001 + np.array([0.0, 0.0001, -0.0001])
    assert verdict(a, b).startswith("level within noise")
    text = paired_verdict(a, b)
    assert text.startswith("lower")
    d = a - b
    se = d.std(ddof=1) / math.sqrt(3)                            # by hand, t quantile with 2 df
    low, high = d.mean() - 4.302653 * se, d.mean() + 4.302653 * se
    assert f"{100 * d.mean():+.2f} NME points (95 % CI {100 * low:+.2f} to {100 * high:+.2f}; paired t" in text


def test_paired_verdict_level_and_too_few_seeds():
    assert paired_verdict([0.03, 0.04, 0.05], [0.031, 0.039, 0.0505]).startswith("level")
    assert paired_verdict([0.03], [0.04]).startswith("no claim")
    with pytest.raises(ValueError, match="one value per seed"):
        paired_verdict([0.03, 0.04, 0.05], [0.03, 0.04])


def test_unit_verdicts_ask_every_question():
    found = dict(cascade_eval.unit_verdicts(_two_unit_seeds()))
    assert list(found) == ["P1 vs argmax(H1) (refinement 1)", "P2 vs argmax(H2) (refinement 2)",
                           "argmax(H2) vs argmax(H1) (heatmap unit 2)", "P2 vs P1 (cascade 2)"]
    assert found["P1 vs argmax(H1) (refinement 1)"].startswith("lower: -1.00 NME points")
    assert found["argmax(H2) vs argmax(H1) (heatmap unit 2)"].startswith("lower: -0.10 NME points")
    # unit 2's refined points: -0.1 points on average, but one seed gains only 0.05: noise?
    d = np.array([-0.001, -0.0005, -0.0014])
    expected = "lower" if abs(d.mean()) > 4.302653 * d.std(ddof=1) / math.sqrt(3) else "level"   # t(0.975, 2 df)
    assert found["P2 vs P1 (cascade 2)"].startswith(expected)


def test_unit_verdicts_say_which_faces_were_held_fixed():
    assert all(v.endswith("the test faces held fixed)") for _, v in cascade_eval.unit_verdicts(_two_unit_seeds()))
    found = cascade_eval.unit_verdicts(_two_unit_seeds(), held_fixed="the 128 validation faces")
    assert all(v.endswith("the 128 validation faces held fixed)") for _, v in found)
    few = cascade_eval.unit_verdicts(_two_unit_seeds()[:2])
    assert all(v.startswith("no claim: 2 paired training seeds") for _, v in few)


def _k_outcomes(k, unit_nmes):
    return [_outcome(k, {f"argmax{k}": v + 0.01, f"unit{k}": v}) for v in unit_nmes]


def test_ablation_rows_place_one_seed_against_the_reference_range():
    by_k = {1: _k_outcomes(1, [0.050]), 2: _k_outcomes(2, [0.041]), 3: _k_outcomes(3, [0.030]),
            4: _k_outcomes(4, [0.040, 0.042, 0.038])}
    rows = {r["K"]: r for r in cascade_eval.ablation_rows(by_k, reference=4)}
    assert rows[1]["reading"] == "above all K=4 seeds (one seed: no claim)"
    assert rows[2]["reading"] == "within the K=4 seed range (one seed: no claim)"
    assert rows[3]["reading"] == "below all K=4 seeds (one seed: no claim)"
    assert rows[4]["reading"] == "seed range 3.80-4.20" and rows[4]["seeds"] == 3
    assert math.isclose(rows[4]["NME %"], 4.0) and math.isclose(rows[4]["argmax NME %"], 5.0)
    assert math.isclose(rows[1]["AUC %"], 50.0)


def test_ablation_rows_errors():
    with pytest.raises(ValueError, match="at least two seeds"):
        cascade_eval.ablation_rows({4: _k_outcomes(4, [0.04])}, reference=4)
    with pytest.raises(ValueError, match=r"by_k\[2\] holds CCNNs with 3 cascades"):
        cascade_eval.ablation_rows({2: _k_outcomes(3, [0.04])})
