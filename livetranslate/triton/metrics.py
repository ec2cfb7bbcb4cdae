"""The pipeline's metrics (livetranslate.pipeline.metrics) as Triton custom metrics: they appear on
Triton's own metrics endpoint beside Triton's. Only imported inside Triton's Python backend
stub."""

from __future__ import annotations

import logging
import threading

import triton_python_backend_utils as pb_utils

from livetranslate.pipeline import metrics as M

log = logging.getLogger("livetranslate.pipeline.metrics")


def _key(family: M.Family, labels: dict[str, str] | None) -> tuple:
    return family.name, tuple(sorted((labels or {}).items()))


class TritonMetrics(M.Metrics):
    """Every family and every one of its (fixed) label sets is created at start, so each
    series is on the endpoint from the start, at 0 (a rate() needs the zero).

    One metric call at a time: each is a message the stub sends Triton, and Triton 2.51's
    server died of SIGSEGV in libtriton_python.so now and then while the stream workers and
    the gauge sampler updated metrics from several threads at once (twice in about five runs
    of the streaming bench, which streams as fast as it can)."""

    sample_every_s = 1.0

    def __init__(self):
        self._lock = threading.Lock()
        kinds = {
            M.COUNTER: pb_utils.MetricFamily.COUNTER,
            M.GAUGE: pb_utils.MetricFamily.GAUGE,
            M.HISTOGRAM: pb_utils.MetricFamily.HISTOGRAM,
        }
        # Triton drops a family (and fails its metrics) when the last reference to it goes
        self._families = []
        self._metrics = {}
        for family in M.FAMILIES:
            triton_family = pb_utils.MetricFamily(name=family.name, description=family.help, kind=kinds[family.kind])
            self._families.append(triton_family)
            for labels in family.label_sets():
                extra = {"buckets": list(family.buckets)} if family.kind == M.HISTOGRAM else {}
                self._metrics[_key(family, labels)] = triton_family.Metric(labels=labels, **extra)

    def _metric(self, family: M.Family, labels: dict[str, str] | None):
        metric = self._metrics.get(_key(family, labels))
        if metric is None:
            log.warning("no metric %s%s: not reported", family.name, labels or "")
        return metric

    # a metric that fails must never fail the stream that reports it: logged, not raised
    def increment(self, family, labels=None, by=1.0):
        try:
            if (metric := self._metric(family, labels)) is not None:
                with self._lock:
                    metric.increment(by)
        except Exception as exc:
            log.warning("metric %s: %s", family.name, exc)

    def set(self, family, value):
        try:
            if (metric := self._metric(family, None)) is not None:
                with self._lock:
                    metric.set(float(value))
        except Exception as exc:
            log.warning("metric %s: %s", family.name, exc)

    def observe(self, family, value, labels=None):
        try:
            if (metric := self._metric(family, labels)) is not None:
                with self._lock:
                    metric.observe(float(value))
        except Exception as exc:
            log.warning("metric %s: %s", family.name, exc)

    def close(self) -> None:
        """A family must go after its metrics (Triton's rule)."""
        with self._lock:
            self._metrics.clear()
            self._families.clear()
