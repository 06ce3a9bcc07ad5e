"""Cohort analysis of the workflow (the ``cohort_*`` rules), driven by the ``cohort``
section of the configuration (config/README.md).

* :mod:`dce.cohort.config` -- the section as typed objects, cross-references checked;
* :mod:`dce.cohort.frames` -- the cohort, change and predictor tables every analysis
  starts from (terms defined there);
* :mod:`dce.cohort.analysis` -- ROC, predictions and pre/post statistics as result
  objects whose tables have the columns of their row dataclasses;
* :mod:`dce.cohort.display` -- the formatted tables of the report;
* :mod:`dce.cohort.sessions` -- the sheets checked against the section before any job,
  and the sessions left out after failures (the exclusions table).

The statistics are those of :mod:`dce.stats` and :mod:`dce.response`; the figures are in
:mod:`dce.viz.cohort`; results are written and read back by :mod:`dce.io.results`.
Nothing here reads or writes files.
"""
