"""lmk.track: Xia et al. (2022)'s tracking loop with stub predictors and the last-frame baseline."""

import numpy as np
import pytest
import torch

from lmk.codecs import MarginalCodec
from lmk.data import synth_video
from lmk.data.transforms import crop_matrix
from lmk.geometry import apply_affine
from lmk.models import ATPN, MarginalDetector
from lmk.models.temporal import YinTracker
from lmk.track import (SimulatedDetector, Tracker, YinPredictor, atpn_predictor,
                       marginal_predictor, summarize)

SIZE = 32          # crop side
T = 6


@pytest.fixture(scope="module")
def video():
    return synth_video(3, T=T, size=64)


class Oracle:
    """Returns the truth of the current frame moved by ``offset`` frame pixels, in crop pixels,
    with a fixed confidence (or None); counts its frames, reset at every video."""

    def __init__(self, video, confidence=1.0, offset=(0.0, 0.0), scale=1.0, nan_at=None):
        self.truth = np.asarray(video["landmarks"], np.float64)
        self.confidence, self.offset, self.scale, self.nan_at = confidence, offset, scale, nan_at
        self.frame, self.resets = 0, 0

    def reset(self):
        self.frame, self.resets = 0, self.resets + 1

    def __call__(self, crops, transforms):
        assert crops.shape == (1, 3, SIZE, SIZE) and transforms.shape == (1, 2, 3)
        p = self.truth[self.frame]
        p = (p - p.mean(0)) * self.scale + p.mean(0) + np.asarray(self.offset)
        if self.frame == self.nan_at:
            p = np.full_like(p, np.nan)
        self.frame += 1
        conf = None if self.confidence is None else torch.tensor([self.confidence])
        return torch.from_numpy(apply_affine(p, transforms[0])[None]), conf


def _square(box, margin):
    """The crop's source square by hand: centre of ``box``, side = longer side * (1 + 2 margin)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[cx - side / 2, cy - side / 2], [cx + side / 2, cy + side / 2]])


def _iod_nme(pred, truth):
    iod = np.linalg.norm(truth[:, 36] - truth[:, 45], axis=-1)
    return np.linalg.norm(pred - truth, axis=-1).mean(-1) / iod


# ----------------------------------------------------------------------------- the loop
def test_an_oracle_tracks_exactly_and_never_redetects(video):
    oracle = Oracle(video, confidence=0.95)
    result = Tracker(oracle, SIZE).track(video)
    assert np.abs(result.nme).max() < 1e-9
    assert result.detected.tolist() == [True] + [False] * (T - 1)
    assert not result.lost.any()
    s = result.summary()
    assert (s["detector_calls"], s["lost_frames"], s["failure_rate"]) == (1, 0, 0.0)
    assert s["detector_calls_saved"] == pytest.approx(1 - 1 / T)


def test_low_confidence_redetects_every_frame(video):
    result = Tracker(Oracle(video, confidence=0.69), SIZE, threshold=0.7).track(video)
    assert result.detected.all() and result.lost.all()
    s = result.summary()
    assert (s["detector_calls"], s["detector_calls_saved"], s["lost_rate"]) == (T, 0.0, 1.0)
    np.testing.assert_allclose(result.confidence, 0.69)


def test_the_roi_is_the_last_landmarks_widened_by_25_percent(video):
    # predictions off the truth by (3, -2) px, so an ROI from the truth would be caught
    result = Tracker(Oracle(video, offset=(3.0, -2.0)), SIZE, margin=0.25,
                     detector=SimulatedDetector(jitter=0.0)).track(video)
    edges = np.array([[-0.5, -0.5], [SIZE - 0.5, SIZE - 0.5]])     # the crop's outer pixel edges
    truth = np.asarray(video["landmarks"], np.float64)
    first = np.concatenate([truth[0].min(0), truth[0].max(0)])      # the detector's box, jitter 0
    np.testing.assert_allclose(apply_affine(edges, _inverse(result.transforms[0])),
                               _square(first, 0.25), atol=1e-9)
    for t in range(1, T):
        prev = result.landmarks[t - 1]
        box = np.concatenate([prev.min(0), prev.max(0)])
        np.testing.assert_allclose(apply_affine(edges, _inverse(result.transforms[t])),
                                   _square(box, 0.25), atol=1e-9)
    np.testing.assert_allclose(result.landmarks, truth + [3.0, -2.0], atol=1e-9)


def _inverse(m):
    full = np.vstack([m, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def test_nme_is_inter_ocular_per_frame(video):
    result = Tracker(Oracle(video, offset=(1.0, 0.0)), SIZE).track(video)
    truth = np.asarray(video["landmarks"], np.float64)
    np.testing.assert_allclose(result.nme, _iod_nme(truth + [1.0, 0.0], truth), rtol=1e-9)


def test_the_last_frame_baseline(video):
    result = Tracker(Oracle(video), SIZE).track(video)
    truth = np.asarray(video["landmarks"], np.float64)
    expected = [np.mean([np.hypot(*(truth[t, k] - truth[t - 1, k])) for k in range(68)])
                / np.hypot(*(truth[t, 36] - truth[t, 45])) for t in range(1, T)]
    np.testing.assert_allclose(result.baseline_nme, expected, rtol=1e-9)
    assert result.summary()["baseline_mean_nme"] == pytest.approx(np.mean(expected))


def test_unusable_landmarks_lose_the_face(video):
    result = Tracker(Oracle(video, nan_at=2), SIZE).track(video)
    assert result.lost.tolist() == [False, False, True, False, False, False]
    assert result.detected.tolist() == [True, False, False, True, False, False]
    assert np.isnan(result.nme[2]) and np.isnan(result.summary()["mean_nme"])
    assert result.summary()["failure_rate"] == pytest.approx(1 / T)       # NaN counts as failure
    collapsed = Tracker(Oracle(video, scale=0.0), SIZE).track(video)     # all points at one spot
    assert collapsed.lost.all() and collapsed.detected.all()


def test_without_confidence_the_spread_rule_decides(video):
    kept = Tracker(Oracle(video, confidence=None), SIZE).track(video)
    assert not kept.lost.any() and kept.detected.sum() == 1
    assert np.isnan(kept.confidence).all()
    shrunk = Tracker(Oracle(video, confidence=None, scale=0.5), SIZE, max_change=0.5).track(video)
    assert shrunk.lost.all()                                  # half the size: past x1.5
    tolerant = Tracker(Oracle(video, confidence=None, scale=0.5), SIZE, max_change=1.5)
    assert not tolerant.track(video).lost[0]
    moved = Tracker(Oracle(video, confidence=None, offset=(40.0, 0.0)), SIZE).track(video)
    assert moved.lost[0]
    never = Tracker(Oracle(video, confidence=None, scale=0.5), SIZE, fallback="never").track(video)
    assert not never.lost.any() and never.detected.sum() == 1


def test_the_spread_rule_catches_a_slow_drift(video):
    # an image-blind predictor: a fixed shape in crop pixels, 0.9 times the face of the first
    # crop; each ROI then shrinks by 0.9 a frame, which only the size at detection reveals
    truth = np.asarray(video["landmarks"], np.float64)
    first = crop_matrix(np.concatenate([truth[0].min(0), truth[0].max(0)]), SIZE, 0.25)
    centre = (SIZE - 1) / 2
    template = (apply_affine(truth[0], first) - centre) * 0.9 + centre

    def blind(crops, transforms):
        return template[None], None

    tracker = Tracker(blind, SIZE, detector=SimulatedDetector(jitter=0.0), max_change=0.5)
    result = tracker.track(video)
    assert result.lost.tolist()[:4] == [False, False, False, True]      # 0.9^4 < 1 / 1.5
    assert result.detected[4]
    assert not Tracker(blind, SIZE, fallback="never").track(video).lost.any()


def test_detection_mode_and_reset_per_video(video):
    oracle = Oracle(video)
    tracker = Tracker(oracle, SIZE, detect_every_frame=True)
    results = tracker.track_all([video, video], batch=1)
    assert oracle.resets == 2 and all(r.detected.all() for r in results)
    s = summarize(results)
    assert (s["videos"], s["frames"], s["detector_calls"]) == (2, 2 * T, 2 * T)


def test_summaries_pool_frames(video):
    good = Tracker(Oracle(video), SIZE).track(video)
    bad = Tracker(Oracle(video, confidence=0.1, offset=(30.0, 0.0)), SIZE).track(video)
    s = summarize([good, bad], threshold=0.1)
    assert s["detector_calls"] == 1 + T and s["lost_frames"] == T
    assert s["lost_rate"] == pytest.approx(0.5)
    assert s["mean_nme"] == pytest.approx(np.concatenate([good.nme, bad.nme]).mean())
    assert s["failure_rate"] == pytest.approx(np.mean(np.concatenate([good.nme, bad.nme]) > 0.1))


def test_the_simulated_detector_is_repeatable_and_noisy(video):
    det = SimulatedDetector(jitter=0.1, seed=4)
    box = det(video, 2)
    np.testing.assert_array_equal(box, SimulatedDetector(jitter=0.1, seed=4)(video, 2))
    assert not np.allclose(box, det(video, 3)) and not np.allclose(box, SimulatedDetector(0.1, 5)(video, 2))
    truth = np.asarray(video["landmarks"][2], np.float64)
    np.testing.assert_allclose(SimulatedDetector(jitter=0.0)(video, 2),
                               np.concatenate([truth.min(0), truth.max(0)]))


# ----------------------------------------------------------------------- real models
def test_atpn_runs_in_the_loop(video):
    torch.manual_seed(0)
    model = ATPN(68, SIZE, width=0.25)
    truth = np.asarray(video["landmarks"][0], np.float64)
    model.set_mean_shape(apply_affine(truth, _crop(truth)))   # a face shape, not one point
    with pytest.raises(ValueError, match="training mode"):
        atpn_predictor(model)
    result = Tracker(atpn_predictor(model.eval()), SIZE).track(video)
    assert np.isfinite(result.landmarks).all()
    assert ((result.confidence > 0) & (result.confidence < 1)).all()
    assert result.lost.tolist() == list(result.confidence < 0.7)


def _crop(points):
    return crop_matrix(np.concatenate([points.min(0), points.max(0)]), SIZE, 0.25)


def test_yin_detector_and_tracker_run_in_the_loop(video):
    torch.manual_seed(0)
    detector = MarginalDetector(68, SIZE, width_mult=0.25, channels=8, compressed=2).eval()
    codec = MarginalCodec(SIZE, 3 * SIZE, sigma=3.0)
    plain = Tracker(marginal_predictor(detector, codec), SIZE).track(video)
    tracker = YinTracker(detector, 0.3, channels=4).eval()
    yin = YinPredictor(tracker, codec)
    temporal = Tracker(yin, SIZE).track(video)
    np.testing.assert_allclose(temporal.landmarks, plain.landmarks)   # untrained = its detector
    assert yin.state is not None and yin.state[0].shape == (1, 4, 3 * SIZE)


# ------------------------------------------------------------------------- bad input
def test_bad_videos_are_named(video):
    tracker = Tracker(Oracle(video), SIZE)
    with pytest.raises(ValueError, match="empty.*T = 0"):
        tracker.track({"frames": video["frames"][:0], "landmarks": video["landmarks"][:0]})
    with pytest.raises(ValueError, match=r"'frames'\] must be uint8 of shape \(T, H, W, 3\)"):
        tracker.track({"frames": video["frames"][0], "landmarks": video["landmarks"]})
    with pytest.raises(ValueError, match=r"'landmarks'\] must have shape \(T, N, 2\) with T = 6"):
        tracker.track({"frames": video["frames"], "landmarks": video["landmarks"][:-1]})
    nan = video["landmarks"].copy()
    nan[4, 10] = np.nan
    with pytest.raises(ValueError, match="finite; frame 4"):
        tracker.track({"frames": video["frames"], "landmarks": nan})
    with pytest.raises(ValueError, match="'frames'"):
        tracker.track(video["frames"])


def test_bad_predictions_are_named(video):
    def wrong_shape(crops, transforms):
        return torch.zeros(1, 5, 2), None

    def logit(crops, transforms):
        return torch.zeros(1, 68, 2) + 10, torch.tensor([2.5])

    def one_thing(crops, transforms):
        return torch.zeros(1, 68, 2)

    with pytest.raises(ValueError, match=r"shape \(1, 5, 2\) at frame 0; expected \(1, 68, 2\)"):
        Tracker(wrong_shape, SIZE).track(video)
    with pytest.raises(ValueError, match="confidence .*sigmoid"):
        Tracker(logit, SIZE).track(video)
    with pytest.raises(ValueError, match="must return \\(landmarks, confidence or None\\)"):
        Tracker(one_thing, SIZE).track(video)
    with pytest.raises(ValueError, match="detector returned .* frame 0"):
        Tracker(Oracle(video), SIZE, detector=lambda v, i: (10, 10, 5, 20)).track(video)


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 1.5}, "threshold"), ({"margin": -0.1}, "margin"),
    ({"fallback": "sometimes"}, "fallback"), ({"max_change": -1}, "max_change"),
    ({"detector": "mtcnn"}, "detector"), ({"detect_every_frame": 1}, "detect_every_frame"),
    ({"input_size": 32.0}, "input_size"), ({"norm": "iod"}, "norm")])
def test_bad_settings_are_named(video, kwargs, message):
    args = {"input_size": SIZE, **kwargs}
    with pytest.raises(ValueError, match=message):
        Tracker(Oracle(video), args.pop("input_size"), **args)


def test_videos_tracked_together_equal_each_tracked_alone():
    """track_all batches frame t of same-length videos; each keeps its own ROI, losses and calls."""
    from lmk.models import ATPN
    from lmk.track import atpn_predictor
    torch.manual_seed(0)
    model = ATPN(68, SIZE, width=0.25).eval()
    videos = [synth_video((9, i), T=T if i != 1 else T - 2, size=64) for i in range(3)]
    face = np.asarray(videos[0]["landmarks"][0])
    model.set_mean_shape((face - face.min(0)) / np.ptp(face, 0) * SIZE * 0.6 + SIZE * 0.2)
    with torch.no_grad():                      # an untrained net whose outputs vary by crop
        model.tracking.fc.weight.mul_(300.0)
        model.alignment.fc.weight.normal_(0.0, 0.01)
    probe = Tracker(atpn_predictor(model), SIZE, detect_every_frame=True).track_all(videos, batch=1)
    middle = float(np.median(np.concatenate([r.confidence for r in probe])))
    tracker = Tracker(atpn_predictor(model), SIZE, threshold=middle)     # about half the frames lost
    together = tracker.track_all(videos, batch=2)
    for video, result in zip(videos, together):
        alone = tracker.track(video)
        assert len(result.nme) == len(video["frames"])
        np.testing.assert_array_equal(result.detected, alone.detected)
        np.testing.assert_array_equal(result.lost, alone.lost)
        np.testing.assert_allclose(result.landmarks, alone.landmarks, atol=1e-4)
        np.testing.assert_allclose(result.confidence, alone.confidence, atol=1e-6)
    assert any(r.lost.any() for r in together) and not all(r.lost.all() for r in together)
