"""Benchmarks: end-to-end speed of every fusion method through the application's pipeline
(``python -m bench``) and the quality of real-time M2PN against the full network
(``python -m bench.realtime_quality``)."""
