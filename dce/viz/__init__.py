"""Figures and display tables (matplotlib and text; no file I/O).

* :mod:`dce.viz.session` -- figures of one session (AIF QC, TIC, parameter maps);
* :mod:`dce.viz.cohort` -- figures of the cohort analysis (ROC, waterfall, pre/post, TIC
  types, lesion maps);
* :mod:`dce.viz.sections` -- RAS+ reordering and sagittal sections shared by both;
* :mod:`dce.viz.tables` -- text renderings (TSV, Markdown, LaTeX, HTML) and cell formats.
"""
