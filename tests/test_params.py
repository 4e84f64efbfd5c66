import numpy as np
import pytest

from lmk.params import ParameterError, check_params, scaled

SPEC = dict(SCALE=("fast", "full"), SEED=int, LR=float, EPOCHS=(int, None), SHOW_PROGRESS=bool)


def _ns(**over):
    ns = dict(SCALE="fast", SEED=0, LR=1e-3, EPOCHS=None, SHOW_PROGRESS=True, np=np, helper=len)
    ns.update(over)
    return ns


def test_valid_parameters_pass_and_modules_are_ignored():
    out = check_params(_ns(LR=1), **SPEC)  # an int is a fine float
    assert out == dict(SCALE="fast", SEED=0, LR=1, EPOCHS=None, SHOW_PROGRESS=True)


@pytest.mark.parametrize("over,match", [
    (dict(SCALE="medium"), "SCALE='medium'.*one of 'fast', 'full'"),
    (dict(SEED="0"), "SEED='0'.*expected int"),
    (dict(SEED=True), "SEED=True.*expected int"),
    (dict(EPOCHS=2.5), "EPOCHS=2.5.*int or None"),
    (dict(SHOW_PROGRESS=1), "SHOW_PROGRESS=1.*bool"),
    (dict(EPOCS=3), "unknown parameter.*EPOCS"),
])
def test_bad_parameters_are_named(over, match):
    with pytest.raises(ParameterError, match=match):
        check_params(_ns(**over), **SPEC)


def test_missing_parameter():
    ns = _ns()
    del ns["LR"]
    with pytest.raises(ParameterError, match="LR is missing"):
        check_params(ns, **SPEC)


def test_scaled():
    assert scaled("fast", 1, 10) == 1 and scaled("full", 1, 10) == 10 and scaled("full", 1, 10, 3) == 3
    with pytest.raises(ParameterError):
        scaled("huge", 1, 10)
