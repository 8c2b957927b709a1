"""The GLUE tasks: file layout, columns, labels and metrics, as data.

Pure and import-light (no torch, no pandas) so configuration validation and
workflow planning can use it.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskSpec:
    name: str                    # canonical spelling, lower case, GLUE's own ("sts-b")
    folder: str                  # folder in a GLUE download ("STS-B")
    hub_config: str              # nyu-mll/glue configuration name ("stsb")
    n_columns: int               # tab-separated fields per row of the GLUE tsv
    header: bool                 # first line is a header
    text_columns: tuple          # 0-based columns of text_a (and text_b)
    label_column: int            # 0-based column of the label (negative: from the end)
    labels: tuple | None         # label names in the tsv, in id order; None = regression
    hub_text: tuple              # Hub column names of text_a (and text_b)
    metrics: tuple               # metrics computed for every evaluation
    report_metric: str           # the paper's metric for this task
    selection_metric: str        # the official code's checkpoint-selection metric
    dev_splits: tuple = ("dev",)  # names of the labelled evaluation files
    hub_splits: dict = field(default_factory=lambda: {"train": "train", "dev": "validation"})
    large: bool = False          # one of the paper's four large tasks (1k protocol only)

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def pair(self) -> bool:
        return len(self.text_columns) == 2


TASKS: dict[str, TaskSpec] = {
    "rte": TaskSpec("rte", "RTE", "rte", 4, True, (1, 2), 3, ("entailment", "not_entailment"),
                    ("sentence1", "sentence2"), ("accuracy",), "accuracy", "accuracy"),
    "mrpc": TaskSpec("mrpc", "MRPC", "mrpc", 5, True, (3, 4), 0, ("0", "1"),
                     ("sentence1", "sentence2"), ("accuracy", "f1"), "f1", "accuracy"),
    "sts-b": TaskSpec("sts-b", "STS-B", "stsb", 10, True, (7, 8), 9, None,
                      ("sentence1", "sentence2"), ("spearman", "pearson"), "spearman", "spearman"),
    "cola": TaskSpec("cola", "CoLA", "cola", 4, False, (3,), 1, ("0", "1"),
                     ("sentence",), ("mcc",), "mcc", "mcc"),
    "sst-2": TaskSpec("sst-2", "SST-2", "sst2", 2, True, (0,), 1, ("0", "1"),
                      ("sentence",), ("accuracy",), "accuracy", "accuracy", large=True),
    "qnli": TaskSpec("qnli", "QNLI", "qnli", 4, True, (1, 2), 3, ("entailment", "not_entailment"),
                     ("question", "sentence"), ("accuracy",), "accuracy", "accuracy", large=True),
    "qqp": TaskSpec("qqp", "QQP", "qqp", 6, True, (3, 4), 5, ("0", "1"),
                    ("question1", "question2"), ("accuracy", "f1"), "accuracy", "accuracy", large=True),
    "mnli": TaskSpec("mnli", "MNLI", "mnli", 12, True, (8, 9), -1,
                     ("entailment", "neutral", "contradiction"),
                     ("premise", "hypothesis"), ("accuracy",), "accuracy", "accuracy",
                     dev_splits=("dev_matched", "dev_mismatched"),
                     hub_splits={"train": "train", "dev_matched": "validation_matched",
                                 "dev_mismatched": "validation_mismatched"}, large=True),
}

# GLUE training-set sizes (rows), for validating train_size before any data is read.
TRAIN_ROWS = {"rte": 2490, "mrpc": 3668, "sts-b": 5749, "cola": 8551, "sst-2": 67349,
              "qnli": 104743, "qqp": 363846, "mnli": 392702}

ALIASES = {"stsb": "sts-b", "sst2": "sst-2", "sts_b": "sts-b", "sst_2": "sst-2"}


def canonical_task(name: str) -> str:
    """GLUE's own spelling of a task name, case-insensitive; raises with the allowed names."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)} "
                         f"(aliases: {', '.join(ALIASES)})")
    return key


def task_spec(name: str) -> TaskSpec:
    return TASKS[canonical_task(name)]


def dev_split(name: str) -> str:
    """The labelled evaluation file a study halves into validation and test."""
    return task_spec(name).dev_splits[0]
