"""What a run shows and leaves behind: progress, logs, summary, JSON report, Prometheus metrics.

``redact`` keeps secrets out of all of it; ``monitor`` collects what the engine
and the API client report while a run goes.
"""
