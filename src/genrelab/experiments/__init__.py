"""Working with many experiments: sweeps of recipes, reports, paired comparisons, leakage audits.

* :mod:`~genrelab.experiments.report` -- collect experiments (``dvc exp show``), tables,
  plots, recipes and the queue (``genrelab report``, ``genrelab sweep``);
* :mod:`~genrelab.experiments.compare` -- McNemar's test of two experiments (``genrelab compare``);
* :mod:`~genrelab.experiments.audit` -- one setup under leaky vs honest splits (``genrelab audit-leakage``).
"""
