"""The offline training recipe of the shipped weights (head, blender, category model).

Run by `make model` (scripts/train_model.py) and by the leave-one-source-out evaluation, never
by a screening worker: it needs scikit-learn, which the hot path does not.
"""

from core.training.recipe import TrainedModel, TrainingData, train

__all__ = ["TrainedModel", "TrainingData", "train"]
