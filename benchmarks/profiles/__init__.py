"""Benchmark profiles shipped with ganzoo (installed as ``ganzoo.profiles``)."""
