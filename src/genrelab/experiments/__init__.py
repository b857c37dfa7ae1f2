"""Working with many experiments: sweeps of recipes, reports, paired comparisons, leakage audits.

* :mod:`~genrelab.experiments.report` -- the ``genrelab report`` and ``genrelab sweep`` commands, over
  :mod:`~genrelab.experiments.dvc` (DVC's command line; the files ``dvc.yaml`` names),
  :mod:`~genrelab.experiments.expshow` (``dvc exp show`` as experiment records),
  :mod:`~genrelab.experiments.labels` (setup labels; the official splits),
  :mod:`~genrelab.experiments.tables` (the ranked results table), :mod:`~genrelab.experiments.plots`
  and :mod:`~genrelab.experiments.recipes` (recipes, sweeps and the queue);
* :mod:`~genrelab.experiments.compare` -- McNemar's test of two experiments (``genrelab compare``);
* :mod:`~genrelab.experiments.audit` -- one setup under leaky vs honest splits (``genrelab audit-leakage``).
"""
