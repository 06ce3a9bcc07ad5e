"""Text renderings of result tables: TSV, Markdown, LaTeX and HTML (pure formatting).

Every function takes a :class:`pandas.DataFrame` (or numbers) and returns a ``str``;
nothing here reads or writes files (the workflow scripts do). The cohort tables are
kept in two forms: the machine-readable TSV with full-precision numbers (``to_tsv``),
and display tables whose cells are already formatted strings such as
``"0.91 (0.78-1.00)"`` (built with :func:`fmt_ci`, :func:`fmt_median_iqr`,
:func:`fmt_p`, ...) and rendered with :func:`to_markdown`, :func:`to_latex` or
:func:`to_html`.

Missing values (NaN, None, pd.NA) are written as ``n/a`` in TSV (the convention of the
workflow's per-session tables) and as an en dash in display tables.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: the figure jobs (rule prm) need no pandas
    import pandas as pd

__all__ = [
    "fmt_ci",
    "fmt_count",
    "fmt_median_iqr",
    "fmt_num",
    "fmt_p",
    "fmt_p_eq",
    "fmt_pct",
    "fmt_range",
    "is_missing",
    "latex_escape",
    "to_html",
    "to_latex",
    "to_markdown",
    "to_tsv",
]

MISSING = "–"
TSV_NA = "n/a"


# --------------------------------------------------------------------------- cells


def is_missing(v: Any) -> bool:
    """True for None, NaN, pd.NA and NaT (and not for strings or containers)."""
    if v is None:
        return True
    if isinstance(v, (str, bytes, list, tuple, dict)):
        return False
    import pandas as pd

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


MINUS = "\u2212"      # the minus sign of print (not the hyphen-minus)


def _minus(s: str) -> str:
    return s.replace("-", MINUS)


def fmt_num(v: Any, digits: int = 3, *, fixed: int | None = None) -> str:
    """A number for print: ``digits`` significant digits (``fixed``: that many decimals),
    never in scientific notation, with a proper minus sign (U+2212).

    Integers (also integer-valued floats of magnitude below 1e6 with ``fixed`` unset)
    are written without decimals; missing values as an en dash.
    """
    if is_missing(v):
        return MISSING
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)) and fixed is None:
        return _minus(str(int(v)))
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isinf(x):
        return "∞" if x > 0 else MINUS + "∞"
    if fixed is not None:
        s = f"{x:.{fixed}f}"
        if float(s) == 0.0:
            s = s.lstrip("-")              # no "-0.0"
        return _minus(s)
    if x == round(x) and abs(x) < 1e6:
        return _minus(str(round(x)))
    s = f"{x:.{digits}g}"
    if "e" in s:                           # 1.22e+04 -> 12200, 1.5e-05 -> 0.0000150
        r = float(s)
        dec = max(digits - 1 - math.floor(math.log10(abs(r))), 0) if r else 0
        s = f"{r:.{dec}f}"
    return _minus(s)


def fmt_range(lo: Any, hi: Any, *, digits: int = 3, fixed: int | None = None,
              unit: str = "") -> str:
    """A range for print: ``"0.78–1.00"`` (en dash), or ``"−10 to −5"`` when a bound
    is negative (an en dash next to a minus sign reads as a subtraction)."""
    a, b = fmt_num(lo, digits, fixed=fixed), fmt_num(hi, digits, fixed=fixed)
    if MINUS in a + b or "∞" in a + b:
        return f"{a}{unit} to {b}{unit}"
    return f"{a}–{b}{unit}"


def fmt_ci(est: Any, lo: Any, hi: Any, *, fixed: int | None = 2, digits: int = 3) -> str:
    """``"est (lo–hi)"``, e.g. ``"0.91 (0.78–1.00)"`` or ``"−0.10 (−0.25 to 0.05)"``; an
    en dash if ``est`` is missing."""
    if is_missing(est):
        return MISSING
    if is_missing(lo) or is_missing(hi):
        return fmt_num(est, digits, fixed=fixed)
    return f"{fmt_num(est, digits, fixed=fixed)} ({fmt_range(lo, hi, digits=digits, fixed=fixed)})"


def fmt_pct(k: Any, n: Any, est: Any, lo: Any, hi: Any) -> str:
    """A proportion as ``"k/n, 83% (55–95%)"``; an en dash when ``n`` is 0 or missing."""
    if is_missing(n) or int(n) == 0:
        return MISSING
    return (f"{int(k)}/{int(n)}, {100 * float(est):.0f}% "
            f"({100 * float(lo):.0f}–{100 * float(hi):.0f}%)")


def fmt_median_iqr(med: Any, q25: Any, q75: Any, digits: int = 3, *,
                   fixed: int | None = None) -> str:
    """``"median [q25, q75]"``."""
    if is_missing(med):
        return MISSING
    def f(v: Any) -> str:
        return fmt_num(v, digits, fixed=fixed)

    return f"{f(med)} [{f(q25)}, {f(q75)}]"


def fmt_p(p: Any) -> str:
    """A p value: ``"< 0.001"``, 3 decimals below 0.1, else 2."""
    if is_missing(p):
        return MISSING
    x = float(p)
    if x < 0.001:
        return "< 0.001"
    return f"{x:.3f}" if x < 0.1 else f"{x:.2f}"


def fmt_p_eq(p: Any) -> str:
    """A p value in running text: ``"p < 0.001"``, ``"p = 0.012"``."""
    s = fmt_p(p)
    return f"p {s}" if s.startswith("<") else f"p = {s}"


def fmt_count(v: Any) -> str:
    return MISSING if is_missing(v) else str(int(v))


def _cell(v: Any) -> str:
    if isinstance(v, str):
        return v
    if is_missing(v):
        return MISSING
    return fmt_num(v)


def _check(df: pd.DataFrame, what: str) -> None:
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")


def _numeric_columns(df: pd.DataFrame) -> list[bool]:
    """Whether each column of ``df`` has a numeric dtype."""
    from pandas.api.types import is_numeric_dtype

    return [bool(is_numeric_dtype(df[c])) for c in df.columns]


# --------------------------------------------------------------------------- TSV


def to_tsv(df: pd.DataFrame, *, float_format: str = "%.6g") -> str:
    """Tab-separated text with a header line; missing values as ``n/a``; no index."""
    _check(df, "to_tsv")
    text = df.to_csv(sep="\t", index=False, na_rep=TSV_NA, float_format=float_format,
                     lineterminator="\n")
    return str(text)


# --------------------------------------------------------------------------- Markdown


def _md_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, *, caption: str | None = None,
                align: Sequence[str] | None = None, note: str | None = None) -> str:
    """A GitHub-flavoured Markdown pipe table; cells are formatted with :func:`fmt_num`
    unless they are strings already. ``align``: one of ``"l"``, ``"r"``, ``"c"`` per
    column (default: right for numeric columns, left otherwise). ``caption`` is written
    as an italic line above the table, ``note`` (a footnote) as a paragraph below it."""
    _check(df, "to_markdown")
    cols = [str(c) for c in df.columns]
    if align is None:
        align = ["r" if num else "l" for num in _numeric_columns(df)]
    if len(align) != len(cols):
        raise ValueError(f"to_markdown: align has {len(align)} entries for {len(cols)} "
                         f"columns")
    rule = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = []
    if caption:
        lines += [f"*{_md_escape(caption)}*", ""]
    lines.append("| " + " | ".join(_md_escape(c) for c in cols) + " |")
    lines.append("| " + " | ".join(rule[a] for a in align) + " |")
    for row in df.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_md_escape(_cell(v)) for v in row) + " |")
    if note:
        lines += ["", _md_escape(note)]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- LaTeX

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}", "–": "--", "∞": r"$\infty$", "≥": r"$\geq$",
    "≤": r"$\leq$", "±": r"$\pm$", "→": r"$\rightarrow$", "Δ": r"$\Delta$",
    "²": r"$^2$", "<": r"\textless{}", ">": r"\textgreater{}",
    "\u2212": r"$-$", "⁻¹": r"$^{-1}$", "·": r"$\cdot$", "³": r"$^3$", "δ": r"$\delta$",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))


def latex_escape(s: str) -> str:
    """Escape LaTeX special characters (and map a few Unicode symbols to math)."""
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group(0)], s)


def to_latex(df: pd.DataFrame, *, caption: str | None = None, label: str | None = None,
             align: Sequence[str] | None = None, booktabs: bool = True,
             note: str | None = None) -> str:
    """A LaTeX ``table`` with a ``tabular`` (booktabs rules by default; needs
    ``\\usepackage{booktabs}``). Cells are escaped; ``label`` gives ``\\label{...}``;
    ``note`` (a footnote) is set in small type below the tabular."""
    _check(df, "to_latex")
    cols = [str(c) for c in df.columns]
    if align is None:
        align = ["r" if num else "l" for num in _numeric_columns(df)]
    if len(align) != len(cols):
        raise ValueError(f"to_latex: align has {len(align)} entries for {len(cols)} columns")
    top, mid, bottom = ((r"\toprule", r"\midrule", r"\bottomrule") if booktabs
                        else (r"\hline", r"\hline", r"\hline"))
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small"]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines.append(r"\begin{tabular}{" + "".join(align) + "}")
    lines.append(top)
    lines.append(" & ".join(latex_escape(c) for c in cols) + r" \\")
    lines.append(mid)
    for row in df.itertuples(index=False, name=None):
        lines.append(" & ".join(latex_escape(_cell(v)) for v in row) + r" \\")
    lines += [bottom, r"\end{tabular}"]
    if note:
        lines += [r"\par\smallskip", r"\parbox{\linewidth}{\footnotesize "
                  + latex_escape(note) + "}"]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       font-size: 13px; margin: 12px; color: #222; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0 8px; }
table { border-collapse: collapse; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; white-space: nowrap; }
th { background: #f3f4f6; text-align: left; position: sticky; top: 0; }
td.r { text-align: right; font-variant-numeric: tabular-nums; }
tr:hover td { background: #f9fafb; }
p.note { color: #555; max-width: 70em; }
"""


def to_html(df: pd.DataFrame, *, caption: str | None = None, note: str | None = None,
            title: str | None = None) -> str:
    """A self-contained HTML page holding the table (for the Snakemake report)."""
    _check(df, "to_html")
    numeric = _numeric_columns(df)
    out = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(title or caption or 'table')}</title>",
           f"<style>{_CSS}</style></head><body>", "<table>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>"
                                       for c in df.columns) + "</tr></thead><tbody>")
    for row in df.itertuples(index=False, name=None):
        cells = []
        for v, num in zip(row, numeric, strict=True):
            text = html.escape(_cell(v))
            right = num or (isinstance(v, str) and bool(re.match(r"^[-\u2212<\d.]", v)))
            cells.append(f'<td class="r">{text}</td>' if right else f"<td>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    if note:
        out.append(f'<p class="note">{html.escape(note)}</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"
