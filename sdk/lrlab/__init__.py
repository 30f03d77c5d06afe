"""lrlab's Python SDK: drive an lrlab server from code.

    import lrlab
    client = lrlab.Client()                      # LRLAB_URL, LRLAB_TOKEN
    sweep = client.submit("sweep.yaml")
    for event in client.sweep(sweep.id).stream():
        print(event.type, event.points)
    print(client.sweep(sweep.id).wait().trial_counts)

Light on purpose: httpx and pydantic; pandas only for DataFrames. No server code.
"""

from lrlab._api_lr import NotAvailable
from lrlab._api_sweeps import WaitTimeout
from lrlab._batcher import BatcherStats, BufferFull
from lrlab._retry import RetryPolicy
from lrlab._version import VERSION
from lrlab.client import Client
from lrlab.errors import (
    Conflict,
    ConnectionFailed,
    ErrorDetail,
    Forbidden,
    LrlabError,
    NotFound,
    PayloadTooLarge,
    RequestError,
    ServerError,
    Unauthorized,
    ValidationError,
)
from lrlab.handles import SweepHandle, TrialHandle
from lrlab.models import (
    Analysis,
    Finding,
    Health,
    IssuedToken,
    LrFind,
    MetricSpec,
    Page,
    Project,
    ProjectCreated,
    Recommendation,
    RegistryEntry,
    RunInfo,
    Series,
    Sweep,
    SweepAnalysis,
    Token,
    Trial,
    TrialEvent,
)
from lrlab.runs import Run, RunNotFlushed
from lrlab.specs import SpecFileError
from lrlab.streaming import EventStream, MetricPoint, StreamEvent

__version__ = VERSION
__all__ = [
    "Analysis",
    "BatcherStats",
    "BufferFull",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "ErrorDetail",
    "EventStream",
    "Finding",
    "Forbidden",
    "Health",
    "IssuedToken",
    "LrFind",
    "LrlabError",
    "MetricPoint",
    "MetricSpec",
    "NotAvailable",
    "NotFound",
    "Page",
    "PayloadTooLarge",
    "Project",
    "ProjectCreated",
    "Recommendation",
    "RegistryEntry",
    "RequestError",
    "RetryPolicy",
    "Run",
    "RunInfo",
    "RunNotFlushed",
    "Series",
    "ServerError",
    "SpecFileError",
    "StreamEvent",
    "Sweep",
    "SweepAnalysis",
    "SweepHandle",
    "Token",
    "Trial",
    "TrialEvent",
    "TrialHandle",
    "Unauthorized",
    "ValidationError",
    "WaitTimeout",
    "__version__",
]
