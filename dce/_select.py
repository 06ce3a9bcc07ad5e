"""Compiled order statistics shared by the fit and AIF kernels (numba, no Python objects)."""

from __future__ import annotations

from typing import Any

import numba
from numpy.typing import NDArray

__all__ = ["median"]


@numba.njit(cache=True, nogil=True)
def median(a: NDArray[Any], n: int) -> float:
    """Median of ``a[:n]`` (``n >= 1``) by quickselect in place (reorders ``a[:n]``); the
    same number as ``np.median``: for even ``n`` the mean of the two middle values."""
    k = n // 2
    lo = 0
    hi = n - 1
    while hi > lo:   # Hoare partition around the middle element until a[k] is in place
        pivot = a[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                tmp = a[i]
                a[i] = a[j]
                a[j] = tmp
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    m = a[k]
    if n % 2 == 1:
        return m
    below = a[0]        # every a[:k] <= a[k]: the lower middle value is their maximum
    for i in range(1, k):
        below = max(below, a[i])
    return (below + m) / 2
