"""Statistics of shares (proportions): intervals, tests and effect sizes, in plain Python.

What a report on many texts needs to say how sure a share, a trend or a before/after change is:
Wilson intervals, Newcombe's interval of a difference, the pooled two-proportion z-test, Pearson's
chi-square test of a 2 x K table, Cohen's h and Holm's correction for many tests. scipy is not a
dependency (checked against it in tests/test_text_report.py where it is installed); each function
is a few lines of textbook maths.
"""

from __future__ import annotations

import math
from typing import Sequence

Z95 = 1.959963984540054  # the normal quantile of 0.975: two-sided 95%


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the share k/n (stays inside [0, 1] and is sound for small counts and
    shares near 0 or 1, where the textbook p +- z*se is not). (0, 1) for n = 0: nothing is known."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def diff_interval(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) of the difference k2/n2 - k1/n1, built from the
    two Wilson intervals: good coverage where the Wald interval of a difference is too narrow."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p2 - p1
    return d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (k1/n1 against k2/n2); 1.0 where the
    pooled share is 0 or 1 (no variation: no evidence of a difference)."""
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return min(1.0, 2 * normal_sf(abs(k2 / n2 - k1 / n1) / se))


def min_expected(k1: int, n1: int, k2: int, n2: int) -> float:
    """The smallest expected cell count of the 2 x 2 table: under 5, the z-test is not trusted."""
    pooled = (k1 + k2) / (n1 + n2)
    return min(n1, n2) * min(pooled, 1 - pooled)


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h of a change from share p1 to p2: 0.2 small, 0.5 medium, 0.8 large (Cohen 1988)."""
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


def chi_square(table: Sequence[Sequence[int]]) -> tuple[float, int, float]:
    """Pearson's chi-square test of independence of an R x K table of counts: (statistic, degrees
    of freedom, p-value). Columns (labels) with no count at all are left out."""
    cols = [j for j in range(len(table[0])) if sum(row[j] for row in table) > 0]
    rows = [[row[j] for j in cols] for row in table if sum(row[j] for j in cols) > 0]
    if len(rows) < 2 or len(cols) < 2:
        return 0.0, 0, 1.0
    total = sum(map(sum, rows))
    col_sums = [sum(r[j] for r in rows) for j in range(len(cols))]
    stat = 0.0
    for r in rows:
        n = sum(r)
        for j, observed in enumerate(r):
            expected = n * col_sums[j] / total
            stat += (observed - expected) ** 2 / expected
    df = (len(rows) - 1) * (len(cols) - 1)
    return stat, df, chi2_sf(stat, df)


def chi2_sf(x: float, df: int) -> float:
    """P(X > x) for X chi-square with df degrees of freedom: the regularised upper incomplete
    gamma function Q(df/2, x/2) (series below a + 1, Lentz's continued fraction above)."""
    if x <= 0:
        return 1.0
    a, x = df / 2, x / 2
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # P(a, x) by its series, Q = 1 - P
        term = total = 1 / a
        for i in range(1, 1000):
            term *= x / (a + i)
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: compare each with the level (0.05) to control the chance
    of any false finding across the whole family, without Bonferroni's loss of power."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
