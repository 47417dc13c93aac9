"""The statistics of the sweep tables: mean and sample standard deviation
over seeds, and the paired per-seed difference of two methods with its
Student-t confidence interval (:func:`scipy.stats.ttest_rel`).

The standard deviation is the sample one (``n - 1`` in the denominator).
It is undefined for a single value and is then ``None``, never 0: one seed
says nothing about the spread between seeds.
"""
import math
import statistics
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple


def mean_std(values: Sequence[float]
             ) -> Tuple[Optional[float], Optional[float]]:
    """Mean and sample standard deviation of ``values``.

    Args:
        values (Sequence[float]): E.g. one accuracy per seed.

    Returns:
        tuple: ``(mean, std)``; ``std`` is None for fewer than 2 values,
        and both are None for none. A NaN or infinite value (a diverged
        run) makes both NaN.

    Example:
        >>> mean_std([90.0, 92.0, 91.0])
        (91.0, 1.0)
        >>> mean_std([90.0]), mean_std([])
        ((90.0, None), (None, None))
    """
    if not values:
        return None, None
    if not all(math.isfinite(v) for v in values):
        return math.nan, math.nan if len(values) > 1 else None
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else None


@dataclass
class PairedDifference:
    """The per-pair differences ``other - base`` and their summary.

    Attributes:
        diffs (list[float]): One difference per pair, in the given order.
        mean (float, optional): Their mean; None without pairs.
        std (float, optional): Their sample standard deviation; None for
            fewer than 2 pairs.
        low (float, optional): Lower end of the two-sided confidence
            interval of the mean difference; None for fewer than 2 pairs.
        high (float, optional): Its upper end.
        confidence (float): The interval's confidence level.
        wins (int): Pairs where ``other`` is higher.
        losses (int): Pairs where ``other`` is lower (ties are neither).
    """
    diffs: List[float]
    mean: Optional[float]
    std: Optional[float]
    low: Optional[float]
    high: Optional[float]
    confidence: float
    wins: int
    losses: int

    @property
    def n(self) -> int:
        """The number of pairs."""
        return len(self.diffs)


def paired_difference(base: Sequence[float], other: Sequence[float],
                      confidence: float = 0.95) -> PairedDifference:
    """Compare two methods measured in pairs (e.g. trained with the same
    seeds).

    The interval is Student's t interval of the mean difference with
    ``n - 1`` degrees of freedom, from :func:`scipy.stats.ttest_rel`
    (``ttest_rel(other, base).confidence_interval(confidence)``):
    ``mean ± t(1 - (1 - confidence) / 2, n - 1) * std / sqrt(n)``.

    Args:
        base (Sequence[float]): The baseline's values, shape ``(n,)``.
        other (Sequence[float]): The other method's values, shape ``(n,)``,
            ``other[i]`` paired with ``base[i]``.
        confidence (float): Confidence level of the interval.

    Returns:
        PairedDifference: ``other - base`` per pair and its summary.

    Raises:
        ValueError: ``base`` and ``other`` differ in length.

    Example:
        >>> p = paired_difference([80.0, 81.0, 82.0], [81.0, 83.0, 85.0])
        >>> p.n, p.mean, p.std, (round(p.low, 4), round(p.high, 4))
        (3, 2.0, 1.0, (-0.4841, 4.4841))
    """
    if len(base) != len(other):
        raise ValueError(f'paired values need one base value per other '
                         f'value; got {len(base)} and {len(other)}.')
    diffs = [float(o) - float(b) for b, o in zip(base, other)]
    mean, std = mean_std(diffs)
    low = high = None
    if len(diffs) >= 2:
        from scipy.stats import ttest_rel
        with warnings.catch_warnings():
            # identical differences (std 0) warn of lost precision; the
            # interval is then the single value, as it should be
            warnings.simplefilter('ignore', RuntimeWarning)
            interval = ttest_rel(
                [float(o) for o in other],
                [float(b) for b in base]).confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)
    return PairedDifference(diffs=diffs, mean=mean, std=std, low=low,
                            high=high, confidence=confidence,
                            wins=sum(d > 0 for d in diffs),
                            losses=sum(d < 0 for d in diffs))
