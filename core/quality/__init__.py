"""Measuring screening quality: labelled data and metrics, cross-validation by source, and the
obfuscation suite; `make eval` (scripts/evaluate.py) runs them next to a peer filter."""

from core.quality.evaluation import LabelledTexts, read_labelled_csv, read_shared_sources, report

__all__ = ["LabelledTexts", "read_labelled_csv", "read_shared_sources", "report"]
