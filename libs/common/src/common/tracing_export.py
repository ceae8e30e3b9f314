"""The span exporter wrapper of common.tracing (imported only when tracing is on: it needs
the SDK)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger("common.tracing")


class ReportOnce(SpanExporter):
    """Wraps the OTLP exporter: one error line when exporting starts failing, one info line
    when it works again, and no exception ever reaches the export thread."""

    def __init__(self, inner: SpanExporter, endpoint: str) -> None:
        self.inner = inner
        self.endpoint = endpoint
        self.failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
            detail = "the collector did not accept them"
        except Exception as exc:
            result, detail = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        if result is SpanExportResult.FAILURE and not self.failing:
            self.failing = True
            logger.error(
                "tracing: cannot export spans to %s (%s); spans are dropped until it answers, "
                "requests are not affected. Check OTEL_EXPORTER_OTLP_ENDPOINT.",
                self.endpoint,
                detail,
            )
        elif result is SpanExportResult.SUCCESS and self.failing:
            self.failing = False
            logger.info("tracing: exporting to %s works again", self.endpoint)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)
