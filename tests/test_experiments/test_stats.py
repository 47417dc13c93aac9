"""mmpkkd.experiments.stats: mean and sample std, and the paired Student-t
interval, against values computed by hand and published ones."""
import math
import warnings

import pytest

from mmpkkd.experiments import mean_std, paired_difference


def test_mean_std_hand_computed():
    # deviations from 91: -1, +1, 0; sum of squares 2; 2 / (3 - 1) = 1
    assert mean_std([90.0, 92.0, 91.0]) == (91.0, 1.0)
    # mean 5; sum of squared deviations 32; sample std sqrt(32 / 7)
    mean, std = mean_std([2, 4, 4, 4, 5, 5, 7, 9])
    assert mean == 5.0
    assert std == pytest.approx(math.sqrt(32 / 7), rel=1e-12)
    assert std != pytest.approx(2.0)  # the population std (n) is 2


def test_std_of_one_value_is_undefined_not_zero():
    assert mean_std([90.0]) == (90.0, None)
    assert mean_std([]) == (None, None)


def test_paired_interval_hand_computed():
    # differences 1, 2, 3: mean 2, sample std 1; t(0.975, 2 dof) = 4.302653
    # (t table); half width 4.302653 / sqrt(3) = 2.484138
    p = paired_difference([80.0, 81.0, 82.0], [81.0, 83.0, 85.0])
    assert p.n == 3 and p.diffs == [1.0, 2.0, 3.0]
    assert (p.mean, p.std) == (2.0, 1.0)
    assert p.low == pytest.approx(2 - 2.484138, abs=1e-6)
    assert p.high == pytest.approx(2 + 2.484138, abs=1e-6)
    assert (p.wins, p.losses) == (3, 0)
    # 90 %: t(0.95, 2 dof) = 2.919986; half width 1.685854
    p90 = paired_difference([80.0, 81.0, 82.0], [81.0, 83.0, 85.0], 0.90)
    assert (p90.low, p90.high) == pytest.approx((0.314146, 3.685854),
                                                abs=1e-6)


def test_paired_interval_student_sleep_data():
    """Student (1908)'s sleep data: extra hours of sleep of 10 patients
    under two drugs. Differences 1.2, 2.4, 1.3, 1.3, 0, 1, 1.8, 0.8, 4.6,
    1.4: mean 1.58, sample std 1.229995, standard error 0.388959,
    t(0.975, 9 dof) = 2.262157, so 1.58 ± 0.879886. R's
    ``t.test(extra ~ group, data = sleep, paired = TRUE)`` prints the same
    interval, 0.7001142 to 2.4598858 (signs flipped: group 1 - group 2)."""
    drug1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
    drug2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
    p = paired_difference(drug1, drug2)
    assert p.mean == pytest.approx(1.58, abs=1e-12)
    assert p.std == pytest.approx(1.229995, abs=1e-6)
    assert (p.low, p.high) == pytest.approx((0.7001142, 2.4598858),
                                            abs=1e-7)
    assert (p.wins, p.losses) == (9, 0)  # one patient: no difference


def test_pairs_are_kept_in_order():
    """The same values paired otherwise give other differences: the
    interval is of paired differences, not of two independent samples."""
    p = paired_difference([80.0, 81.0, 82.0], [85.0, 83.0, 81.0])
    assert p.diffs == [5.0, 2.0, -1.0]
    assert (p.mean, p.std) == (2.0, 3.0)
    # half width 4.302653 * 3 / sqrt(3) = 7.452413
    assert (p.low, p.high) == pytest.approx((-5.452413, 9.452413), abs=1e-6)
    assert (p.wins, p.losses) == (2, 1)


def test_equal_differences_give_a_point_interval_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        p = paired_difference([1.0, 2.0, 3.0], [1.5, 2.5, 3.5])
    assert (p.mean, p.std, p.low, p.high) == (0.5, 0.0, 0.5, 0.5)


def test_fewer_than_two_pairs_have_no_interval():
    one = paired_difference([80.0], [79.0])
    assert (one.n, one.mean, one.std, one.low, one.high) == (1, -1.0, None,
                                                             None, None)
    assert (one.wins, one.losses) == (0, 1)
    none = paired_difference([], [])
    assert (none.n, none.mean, none.low) == (0, None, None)


def test_unpaired_lengths_are_refused():
    with pytest.raises(ValueError, match='one base value per other value'):
        paired_difference([1.0, 2.0], [1.0])


def test_a_diverged_value_makes_mean_and_std_nan():
    mean, std = mean_std([0.5, float('nan'), 0.25])
    assert math.isnan(mean) and math.isnan(std)
    mean, std = mean_std([float('inf')])
    assert math.isnan(mean) and std is None
