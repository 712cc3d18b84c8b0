"""Hyperparameter sweeps on Ray Tune.

:mod:`ganzoo.sweep.spec` is what a profile's ``sweep:`` section says (a leaf: the bench's profiles import it);
:mod:`ganzoo.sweep.tune` runs it (:func:`ganzoo.sweep.tune.sweep`, public as :func:`ganzoo.sweep`). This
package imports neither, so that importing the spec does not import the runner.
"""
