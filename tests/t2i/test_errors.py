import math

import numpy as np
import pytest

from t2i.errors import T2IError, check_temperature


@pytest.mark.parametrize("good", [0, 0.0, 0.5, 1, 3.0, [0.0, 1.0], np.array([0.5, 2.0], np.float32)])
def test_check_temperature_passes_good_values_through(good):
    assert check_temperature(good) is good


@pytest.mark.parametrize("bad", [-1, -1e-9, math.nan, math.inf, [0.5, -0.5], [1.0, math.nan], "warm", None])
def test_check_temperature_names_the_flag(bad):
    with pytest.raises(T2IError, match=r"^--temp must be a finite number >= 0, got "):
        check_temperature(bad, "--temp")
    with pytest.raises(ValueError, match=r"^temperature must be"):  # a T2IError is a ValueError
        check_temperature(bad)
