"""The analyzer: pure functions from a run's metric series to findings and advice.

No DB, no HTTP, no torch: callers load the series (services.domain.records.Series or plain
`(steps, values)` pairs) and a RunContext, and get a Diagnosis back:

    diagnosis = diagnose({"train_loss": s, "val_loss": v, "lr": lr}, RunContext.from_spec(spec))
"""

from services.analyzer.context import CYCLICAL_SCHEDULES, RunContext
from services.analyzer.curve_series import SeriesLike
from services.analyzer.curves import Curves
from services.analyzer.diagnose import diagnose
from services.analyzer.findings import KINDS, SEVERITIES, Alternative, Diagnosis, Finding
from services.analyzer.rules import RULES, Rule
from services.analyzer.version import ANALYZER_VERSION

__all__ = [
    "ANALYZER_VERSION",
    "CYCLICAL_SCHEDULES",
    "KINDS",
    "RULES",
    "SEVERITIES",
    "Alternative",
    "Curves",
    "Diagnosis",
    "Finding",
    "Rule",
    "RunContext",
    "SeriesLike",
    "diagnose",
]
