"""Hyperparameter sweeps on Ray Tune: :mod:`ganzoo.sweep.spec` (a profile's ``sweep:`` section, a leaf) and
:mod:`ganzoo.sweep.tune` (the runner, :func:`ganzoo.sweep`); this package imports neither."""
