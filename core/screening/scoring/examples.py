"""Labelled examples added at run time (moderator reviews), global or per tenant.

A handful of examples must move decisions at once, so they are kept apart from the 70k shipped
reference examples (where ten of them would be drowned) and act in two ways on the texts of their
scope (the global examples plus the tenant's own):

- nearest examples: a text close to an example takes the examples' votes, with a confidence
  that rises from `similar_from` to `certain_at` cosine similarity. Each label's evidence is the
  mean similarity weight of its own `neighbours` nearest examples (and harmful against benign
  likewise, all harmful labels pooled), so a label with many examples does not outvote one with
  few by numbers alone: the votes follow the evidence, not the label mix of the reviews. A
  near-copy of an example (from `copy_from`) is decided by it. The harmful examples near a text
  name its category from a wider window (`category_from` to `category_at`): what the head
  pushes over the cut-off takes their kind;
- a small residual head: a logistic correction of the blend's log-odds along the embedding,
  fit on the scope's examples (a few hundred at most, milliseconds) each time one is added, so
  the tenant's notion of harmful shifts texts that are like its examples without being copies.
  Its classes are weighted so that the examples' harmful share is the one the blend already
  gives them: the mix of labels moderators happened to send carries no evidence, only where
  their labels disagree with the blend does.

An example added for tenant A never changes a decision for tenant B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from core.models import CATEGORIES, Category, Neighbor
from core.screening.scoring.arrays import HARMFUL_COLUMNS, LOW, Vectors, logit, sigmoid

_INDEX = {category: i for i, category in enumerate(CATEGORIES)}


class ExamplesConfig(BaseModel):
    """How runtime examples act; the [examples] table of scoring.toml."""

    model_config = ConfigDict(extra="forbid")

    neighbours: int = Field(10, ge=1, le=100)
    sharpness: float = Field(20.0, gt=0)
    similar_from: float = Field(0.7, ge=-1, le=1, description="similarity where votes start")
    certain_at: float = Field(1.0, ge=-1, le=1, description="similarity where votes decide")
    copy_from: float = Field(
        0.95, ge=-1, le=1, description="similarity where the nearest example starts to decide alone"
    )
    category_from: float = Field(
        0.3, ge=-1, le=1, description="similarity where harmful examples start to name the category"
    )
    category_at: float = Field(
        0.6, ge=-1, le=1, description="similarity where harmful examples name the category alone"
    )
    # 0.4, not 0.2: at 0.2 the head's weights grew to a norm of 13 on 150 examples of a source it
    # had little to learn from (ethos), and its scatter pushed the benign texts lying just under the
    # cut-off over it (27% -> 42% flagged at 50 per label, macro-F1 0.677 -> 0.658). 0.4 keeps
    # every one of six unseen sources within 0.009 of no examples, in both label mixes, and costs
    # the left-out spam sources 0.002 of their gain at 50 per label (0.7 and 1.0: 0.02 and 0.03).
    regularisation: float = Field(0.4, ge=0, description="L2 of the residual head's weights")
    bias_regularisation: float = Field(1.0, ge=0, description="L2 of the residual head's bias")
    head_from: int = Field(
        5, ge=1, description="harmful and benign examples each needed before the head is fit"
    )
    steps: int = Field(30, ge=0, le=200, description="Newton steps of the residual head at most")
    shown: int = Field(3, ge=0, le=20, description="runtime examples listed in `similar`")


@dataclass
class _Scope:
    """The examples of one scope (None: global) and its residual head."""

    vectors: Vectors
    ids: list[str] = field(default_factory=list)
    labels: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    base: Vectors = field(default_factory=lambda: np.zeros(0, np.float32))


@dataclass(frozen=True)
class Head:
    """A scope's residual head: log-odds = base + vectors @ weights + bias."""

    weights: Vectors
    bias: float

    def log_odds(self, queries: Vectors, base: Vectors) -> Vectors:
        """The corrected log-odds of texts with these vectors and blended log-odds."""
        result: Vectors = (base + queries @ self.weights + self.bias).astype(np.float32)
        return result


@dataclass(frozen=True)
class Adjustment:
    """What the runtime examples did to a batch."""

    log_odds: Vectors  # (n,) after the examples
    category_probs: Vectors  # (n, categories) after the examples
    shift: Vectors  # (n,) log_odds after minus before: the examples' contribution
    shown: list[list[Neighbor]]  # the runtime examples that acted, closest first


class RuntimeExamples:
    """Per-tenant stores of runtime examples, and how they adjust a batch's blend."""

    def __init__(self, dim: int, config: ExamplesConfig | None = None) -> None:
        self.dim = dim
        self.config = config or ExamplesConfig()
        self._scopes: dict[str | None, _Scope] = {}
        self._heads: dict[str | None, Head] = {}

    def count(self, tenant: str | None = None) -> int:
        """How many examples act on a tenant's texts (its own plus the global ones)."""
        scopes = {None, tenant}
        return sum(len(self._scopes[s].ids) for s in scopes if s in self._scopes)

    def add(
        self,
        vectors: Vectors,
        ids: Sequence[str],
        labels: Sequence[Category],
        base_log_odds: Vectors,
        tenant: str | None = None,
    ) -> None:
        """Store examples (with the blend's log-odds for them) and refit the affected heads.

        An id the scope already holds is replaced, not added again: a later review of the same
        event supersedes the earlier one (and within one call, the last of an id wins).
        """
        scope = self._scopes.setdefault(tenant, _Scope(np.zeros((0, self.dim), np.float32)))
        vectors = np.asarray(vectors, dtype=np.float32)
        base_log_odds = np.asarray(base_log_odds, np.float32)
        last = {example_id: row for row, example_id in enumerate(ids)}
        held = {example_id: position for position, example_id in enumerate(scope.ids)}
        fresh = [row for example_id, row in last.items() if example_id not in held]
        for example_id, row in last.items():
            if example_id in held:
                position = held[example_id]
                scope.vectors[position] = vectors[row]
                scope.labels[position] = _INDEX[labels[row]]
                scope.base[position] = base_log_odds[row]
        scope.vectors = np.vstack([scope.vectors, vectors[fresh]])
        scope.ids.extend(ids[row] for row in fresh)
        scope.labels = np.concatenate(
            [scope.labels, np.array([_INDEX[labels[row]] for row in fresh], np.int64)]
        )
        scope.base = np.concatenate([scope.base, base_log_odds[fresh]])
        # A global example changes every tenant's head; a tenant's only its own.
        stale = list(self._heads) if tenant is None else [tenant]
        for key in stale:
            self._heads.pop(key, None)

    def _examples(self, tenant: str | None) -> _Scope | None:
        """The global examples and the tenant's, together."""
        parts = [self._scopes[s] for s in dict.fromkeys([None, tenant]) if s in self._scopes]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return _Scope(
            np.vstack([p.vectors for p in parts]),
            [i for p in parts for i in p.ids],
            np.concatenate([p.labels for p in parts]),
            np.concatenate([p.base for p in parts]),
        )

    def _head(self, tenant: str | None, scope: _Scope) -> Head:
        """The residual head of a tenant's examples, fit once per change of its examples."""
        if tenant not in self._heads:
            self._heads[tenant] = fit_residual(
                scope.vectors, scope.labels != LOW, scope.base, self.config
            )
        return self._heads[tenant]

    def adjust(
        self,
        vectors: Vectors,
        tenants: Sequence[str | None],
        log_odds: Vectors,
        category_probs: Vectors,
    ) -> Adjustment:
        """Apply each row's scope's examples to its blended log-odds and category mix."""
        out_odds = log_odds.astype(np.float32).copy()
        out_categories = category_probs.astype(np.float32).copy()
        shown: list[list[Neighbor]] = [[] for _ in tenants]
        for tenant in dict.fromkeys(tenants):
            scope = self._examples(tenant)
            if scope is None or not scope.ids:
                continue
            rows = np.flatnonzero([t == tenant for t in tenants])
            odds, categories, listed = self._apply(tenant, scope, vectors[rows], log_odds[rows])
            out_odds[rows] = odds
            confidence = categories[:, LOW]  # carried in the LOW column, see _apply
            mixed = (1.0 - confidence[:, None]) * category_probs[rows] + confidence[:, None] * (
                categories
            )
            mixed[:, LOW] = 0.0
            totals = mixed.sum(axis=1, keepdims=True)
            out_categories[rows] = np.divide(
                mixed, totals, out=category_probs[rows].copy(), where=totals > 0
            )
            for row, items in zip(rows, listed, strict=True):
                shown[row] = items
        return Adjustment(out_odds, out_categories, out_odds - log_odds, shown)

    def _apply(
        self, tenant: str | None, scope: _Scope, queries: Vectors, base: Vectors
    ) -> tuple[Vectors, Vectors, list[list[Neighbor]]]:
        """Log-odds, harmful-category votes (confidence in column LOW) and shown examples."""
        config = self.config
        headed = sigmoid(self._head(tenant, scope).log_odds(queries, base))
        sims = queries @ scope.vectors.T
        top = np.argsort(-sims, axis=1)[:, : config.shown]
        top_sims = np.take_along_axis(sims, top, axis=1)
        best = sims.max(axis=1, keepdims=True)
        votes = balanced_votes(sims, scope.labels, config)
        confidence = _ramp(best[:, 0], config.similar_from, config.certain_at)
        probability = (1.0 - confidence) * headed + confidence * (1.0 - votes[:, LOW])
        categories = votes.astype(np.float32)
        harmful_votes = categories[:, HARMFUL_COLUMNS].sum(axis=1)
        # Only harmful votes say which category; with none the examples leave the mix alone. They
        # name it from a wider window than they decide harmful or not: what the residual head
        # pushed over the cut-off is most likely of the kind of the harmful examples near it.
        naming = _ramp(best[:, 0], config.category_from, config.category_at)
        categories[:, LOW] = np.where(harmful_votes > 0, naming, 0.0)
        shown = [
            [
                Neighbor(
                    id=scope.ids[p],
                    label=CATEGORIES[scope.labels[p]],
                    similarity=round(float(s), 4),
                )
                for s, p in zip(row_sims[: config.shown], row_top[: config.shown], strict=True)
                if s >= min(config.similar_from, config.category_from)
            ]
            for row_sims, row_top in zip(top_sims, top, strict=True)
        ]
        return logit(probability, 1e-6), categories, shown


def balanced_votes(sims: Vectors, labels: npt.NDArray[np.int64], config: ExamplesConfig) -> Vectors:
    """Each row's votes over the categories (LOW_RISK column: benign), the label mix corrected.

    A label's evidence is the mean weight exp(sharpness * (similarity - best)) of its own
    `neighbours` nearest examples, not a sum over everyone's nearest: 100 benign reviews and 5
    harmful ones weigh like 5 and 5 where they are as close. Harmful against benign pools the
    harmful labels; which harmful category splits the harmful share by each label's evidence.
    From `copy_from` on, the nearest example's own label takes over: it decides a near-copy.
    """
    best = sims.max(axis=1, keepdims=True)
    weights = np.exp(config.sharpness * (sims - best))

    def evidence(mask: npt.NDArray[np.bool_]) -> Vectors:
        """Mean weight of the nearest `neighbours` examples under `mask` (0 without any)."""
        part = weights[:, mask]
        if part.shape[1] == 0:
            return np.zeros(len(sims), dtype=np.float32)
        k = min(config.neighbours, part.shape[1])
        mean: Vectors = -np.partition(-part, k - 1, axis=1)[:, :k].mean(axis=1)
        return mean

    per_label = np.stack([evidence(labels == c) for c in range(len(CATEGORIES))], axis=1)
    harmful, benign = evidence(labels != LOW), per_label[:, LOW]
    harmful_share = harmful / np.maximum(harmful + benign, 1e-12)
    kinds = per_label.copy()
    kinds[:, LOW] = 0.0
    kinds /= np.maximum(kinds.sum(axis=1, keepdims=True), 1e-12)
    votes = kinds * harmful_share[:, None]
    votes[:, LOW] = 1.0 - harmful_share
    nearest = np.eye(len(CATEGORIES), dtype=np.float64)[labels[np.argmax(sims, axis=1)]]
    copy = _ramp(best[:, 0], config.copy_from, config.certain_at)[:, None]
    result: Vectors = ((1.0 - copy) * votes + copy * nearest).astype(np.float32)
    return result


def _ramp(similarity: Vectors, start: float, full: float) -> Vectors:
    """0 below `start`, 1 from `full` on, linear between."""
    ramp: Vectors = np.clip((similarity - start) / max(full - start, 1e-6), 0.0, 1.0)
    return ramp


def fit_residual(
    vectors: Vectors, harmful: npt.NDArray[np.bool_], base: Vectors, config: ExamplesConfig
) -> Head:
    """Logistic correction of base log-odds on the examples, the label mix corrected.

    log-odds = base + vectors @ weights + bias, with L2 on the weights and the bias, solved by
    Newton's method: a few hundred examples of 384 dimensions take a dozen steps of milliseconds.
    The classes are weighted so that the weighted harmful share is the blend's mean probability
    over the same examples: what is left to learn is where the labels disagree with the blend,
    not how many of each label arrived. (Classes weighted equally, a scale on the base and a free
    bias, which this replaced, followed the mix: reviews of flagged texts only, 25 of them, once
    flagged 98% of a left-out source's benign texts.)
    """
    dim = vectors.shape[1]
    none = Head(np.zeros(dim, dtype=np.float32), 0.0)
    # With one class only (a few SPAM reports, say) a head would shift every text of the scope;
    # the nearest-example votes already cover texts like those examples.
    if config.steps == 0 or min(harmful.sum(), (~harmful).sum()) < config.head_from:
        return none
    target = harmful.astype(np.float64)
    share = target.mean()
    offset = base.astype(np.float64)
    expected = float(np.clip(np.mean(1.0 / (1.0 + np.exp(-offset))), 0.05, 0.95))
    row_weights = np.where(harmful, expected / share, (1.0 - expected) / (1.0 - share))
    # Columns: the embedding and a constant (the bias).
    features = np.hstack([vectors.astype(np.float64), np.ones((len(target), 1))])
    penalty = np.full(dim + 1, config.regularisation)
    penalty[dim] = max(config.bias_regularisation, 1e-6)  # a whisker keeps the Hessian invertible
    theta = np.zeros(dim + 1)

    def loss(candidate: npt.NDArray[np.float64]) -> float:
        """The weighted log-loss plus the penalty."""
        z = offset + features @ candidate
        data = float(row_weights @ (np.logaddexp(0.0, z) - target * z))
        return data + 0.5 * float(penalty @ candidate**2)

    current = loss(theta)
    for _ in range(config.steps):
        predicted = 1.0 / (1.0 + np.exp(-(offset + features @ theta)))
        gradient = features.T @ (row_weights * (predicted - target)) + penalty * theta
        curvature = row_weights * predicted * (1.0 - predicted)
        hessian = (features * curvature[:, None]).T @ features + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        # Halve the step until the loss falls: Newton's full step can overshoot on few examples.
        rate = 1.0
        while rate > 1e-4 and loss(theta - rate * step) > current:
            rate /= 2
        theta -= rate * step
        previous, current = current, loss(theta)
        if previous - current < 1e-9:
            break
    return Head(theta[:dim].astype(np.float32), float(theta[dim]))
