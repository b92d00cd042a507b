"""Learned attention over multi-scale windows: the reducer kind ``attention_windows``.

An attention network reads a low-resolution view of the canvas and scores every candidate
window of a :class:`stn.reducers.windows.WindowGrid` (each window side of
``window_sizes`` at each cell of its map); K windows are cut from the full-resolution
canvas, each reduced to the output size by ``stn.sampling`` with the run's kernel, and the
classifier reads all K (``candidates = K``). Two estimators make the choice trainable
from the class labels alone; the attention starts from a random initialisation.

``estimator: sampling`` — attention sampling (Katharopoulos & Fleuret, "Processing
Megapixel Images with Deep Attention-Sampling Models", ICML 2019). ``a = softmax(logits)``
over the P windows; the reading is ``E_a[f] = Σ_i a_i f_i`` (``f_i``: the classifier's
logits on window i). Training draws K windows without replacement (Gumbel-top-K:
the ordered draw ``i_1..i_K`` of sequential sampling) and estimates it by

    Y_k = Σ_{j<k} a_{i_j} f_{i_j} + R_k · f_{i_k} · q_k / ⊥(q_k),     Ŷ = (1/K) Σ_k Y_k,
    R_k = 1 − Σ_{j<k} a_{i_j},    q_k = a_{i_k} / R_k  (the draw's probability),

(⊥: stop-gradient). Given the earlier draws, ``E[R_k f_{i_k}] = Σ_{i unseen} a_i f_i``, so
every ``Y_k`` has expectation ``Σ_i a_i f_i`` whatever came before: Ŷ is unbiased. The
ratio ``q_k / ⊥(q_k)`` is 1 in value; its gradient adds ``R_k f_{i_k} ∇log q_k``, the
score-function term, and ``E[∇(R_k f_{i_k}) + R_k f_{i_k} ∇log q_k] = ∇ Σ_{i unseen} a_i
f_i``; since ``E[Y_k | earlier draws]`` does not depend on them, their own score terms
vanish in expectation and ``E[∇Ŷ] = ∇ Σ_i a_i f_i``: the gradient w.r.t. the attention is
unbiased too. Ŷ is linear in the ``f_{i_k}``: the reducer returns the K windows and keeps
their weights ``w_k = (R_k q_k/⊥(q_k) + (K − k) a_{i_k}) / K`` (k = 1..K) for
:meth:`AttentionWindows.pool_candidates`, which the trainer calls on their logits.
Evaluation is deterministic: the K most attended windows, their logits weighted by the
renormalised attention.

``estimator: perturbed_topk`` — differentiable top-K by perturbed maximum (Cordonnier et
al., "Differentiable Patch Selection for Image Recognition", CVPR 2021). Scores ``s`` (the
logits min-max normalised per image, the ``zerooneeps`` normalisation of public ports of
the paper's code, so σ is relative to each image's spread) are perturbed ``M`` times,
``s + σZ``; the indicators of each perturbed top-K, sorted by window index as in the paper,
are averaged: ``I`` ``(K, P)``. Glimpse ``k`` is ``Σ_p I_kp · window_p`` (the paper's
linear combination of patches); the backward of the perturbed maximiser is the Gaussian
integration by parts ``∂E[I]/∂s = E[topk(s + σZ) Zᵀ] / σ``. Only windows with a non-zero
indicator are cut. Evaluation takes the hard top-K. The K glimpses' logits are max-pooled
(``topk_pool``), the suite's multiple-instance reading: one window holds the object,
the others clutter, and a mean would dilute the object's logits by K.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stn.options import option
from stn.reducers.base import (
    LearnedReducerConfig,
    Reducer,
    ReducerConfigError,
    Size,
    register_reducer,
    require_choice,
)
from stn.reducers.sampler_options import SamplingOptions
from stn.reducers.selection import (
    TrainingProgress,
    WindowChoiceOptions,
    attention_pool,
    uniform_choice,
)
from stn.reducers.windows import WindowGrid, WindowSampler, grid_cells, low_resolution_view

ESTIMATORS = ("sampling", "perturbed_topk")
TOPK_POOLS = ("max", "mean")


# --------------------------------------------------------------------------- estimator A


def gumbel_topk(log_probs: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """``(N, P)`` log-probabilities → ``(N, K)`` indices drawn without replacement, in draw
    order (Gumbel-top-K: the top K of ``log p + Gumbel`` is distributed as K sequential
    draws, each from the remaining probabilities renormalised)."""
    uniform = torch.rand(
        log_probs.shape, generator=generator, dtype=log_probs.dtype, device=log_probs.device
    )
    tiny = torch.finfo(log_probs.dtype).tiny
    gumbel = -torch.log(-torch.log(uniform.clamp(min=tiny)))
    return (log_probs.detach() + gumbel).topk(k, dim=1).indices


def sampling_weights(log_attention: Tensor, indices: Tensor) -> Tensor:
    """``(N, K)`` weights ``w`` of the without-replacement estimator (module docstring):
    ``Σ_k w_k f_{i_k}`` is unbiased for ``Σ_i a_i f_i`` in value and gradient.

    Args:
        log_attention: ``(N, P)`` log-probabilities ``log a`` (log-softmax of the logits).
        indices: ``(N, K)`` the ordered draw ``i_1..i_K`` (:func:`gumbel_topk`).
    """
    n, k = indices.shape
    log_a = log_attention.gather(1, indices)  # (N, K)
    drawn = F.one_hot(indices, log_attention.shape[1]).to(torch.bool)  # (N, K, P)
    # Windows drawn before draw k (exclusive cumulative or), as a mask over P.
    before = (drawn.cumsum(1) - drawn.long()).to(torch.bool)
    # log R_k = log Σ_{i not drawn before k} a_i: exact, with no 1 − Σ cancellation.
    log_remaining = torch.logsumexp(
        log_attention.unsqueeze(1).masked_fill(before, float("-inf")), dim=2
    )
    log_q = log_a - log_remaining
    ratio = torch.exp(log_q - log_q.detach())  # 1 in value; ∇ = ∇ log q_k
    later = torch.arange(k - 1, -1, -1, device=indices.device, dtype=log_a.dtype)
    return (log_remaining.exp() * ratio + later * log_a.exp()) / k


def top_attention(log_attention: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Evaluation: ``(N, K)`` indices of the K most attended windows (most first) and
    their attention renormalised to sum to 1."""
    log_a, indices = log_attention.topk(k, dim=1)
    return indices, torch.softmax(log_a, dim=1)


# --------------------------------------------------------------------------- estimator B


class PerturbedTopK(torch.autograd.Function):
    """``E[topk(s + σZ)]`` as ``(N, K, P)`` indicators, averaged over ``M`` Gaussian
    perturbations; indices of each top-K sorted ascending (slot k = k-th smallest index).

    Backward: ``∂I_kd/∂s_e ≈ (1/(Mσ)) Σ_m 1[idx_mk = d] Z_me`` (Gaussian integration by
    parts on the same samples), contracted with the incoming gradient without forming the
    ``(K, P, P)`` Jacobian.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        scores: Tensor,
        k: int,
        samples: int,
        sigma: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        n, p = scores.shape
        noise = torch.randn(
            (n, samples, p), generator=generator, dtype=scores.dtype, device=scores.device
        )
        perturbed = scores.detach().unsqueeze(1) + sigma * noise
        idx = perturbed.topk(k, dim=2, sorted=False).indices.sort(dim=2).values  # (N, M, K)
        indicators = scores.new_zeros(n, k, p)
        indicators.scatter_add_(
            2, idx.transpose(1, 2), scores.new_full((n, k, samples), 1.0 / samples)
        )
        ctx.save_for_backward(noise, idx)
        ctx.sigma = sigma
        return indicators

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        noise, idx = ctx.saved_tensors
        samples = noise.shape[1]
        # A[n, m] = Σ_k grad[n, k, idx[n, m, k]]: the incoming gradient on each sample's pick.
        picked = grad.gather(2, idx.transpose(1, 2)).sum(1)  # (N, M)
        grad_scores = torch.bmm(picked.unsqueeze(1), noise).squeeze(1) / (samples * ctx.sigma)
        return grad_scores, None, None, None, None


def perturbed_topk(
    scores: Tensor,
    k: int,
    samples: int,
    sigma: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``(N, P)`` scores → ``(N, K, P)`` differentiable top-K indicators
    (:class:`PerturbedTopK`; ``generator`` draws the noise)."""
    if scores.dim() != 2 or not 1 <= k <= scores.shape[1]:
        raise ValueError(
            f"perturbed_topk: need (N, P) scores with 1 <= k <= P, got {tuple(scores.shape)} "
            f"and k={k}"
        )
    return PerturbedTopK.apply(scores, k, samples, sigma, generator)


def min_max_normalise(scores: Tensor, eps: float = 1e-5) -> Tensor:
    """Per row to ``[0, 1]`` (the paper's ``zerooneeps``), so σ is relative to the spread."""
    low = scores.min(dim=1, keepdim=True).values
    high = scores.max(dim=1, keepdim=True).values
    return (scores - low) / (high - low + eps)


# --------------------------------------------------------------------------- network


class AttentionNet(nn.Module):
    """``(N, C, v, v) → (N, S, v/2^L, v/2^L)`` logits: L conv3×3-BN-ReLU-maxpool2 stages,
    then a 1×1 convolution with one logit per window size per cell. PyTorch's default
    (random) initialisation throughout."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], scales: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(previous, scales, 1)

    def forward(self, view: Tensor) -> Tensor:
        return self.head(self.features(view))


# --------------------------------------------------------------------------- the reducer


@dataclass(frozen=True)
class AttentionWindowsConfig(SamplingOptions, WindowChoiceOptions, LearnedReducerConfig):
    """Options of ``attention_windows``; ``windows`` is K; the sampling kernel
    (``kernel``, ``antialias``, ``kernel_params``) reduces each window to the output size."""

    estimator: str = option(
        "sampling",
        "sampling (attention sampling, unbiased) or perturbed_topk (differentiable top-K)",
    )
    view_size: int = option(
        96, "side of the anti-aliased low-resolution view the attention network reads"
    )
    attention_channels: tuple[int, ...] = option(
        [8, 16, 32],
        "conv-BN-ReLU-maxpool stages; the map has view_size / 2**stages cells per side",
    )
    topk_sigma: float = option(0.05, "perturbed_topk: noise σ on the [0, 1]-normalised scores")
    topk_samples: int = option(100, "perturbed_topk: M perturbations per image")
    topk_pool: str = option("max", "perturbed_topk: how the K glimpses' logits pool (max, mean)")
    topk_sigma_decay: bool = option(
        False, "perturbed_topk: σ falls linearly from topk_sigma to 0 over training (DPS)"
    )
    attention_smoothing: float = option(
        0.0,
        "sampling: mix this share of the uniform distribution into the attention "
        "(a = (1 − ε)·softmax + ε/P; ATS uses 1e-5), so no window's probability reaches 0",
    )
    entropy_weight: float = option(
        0.0,
        "loss −= this × the entropy of softmax(attention logits) (keeps it spread early; ATS 1e-4)",
    )
    confidence_weight: float = option(
        0.0,
        "sampling: loss += this × CE(classifier's confidence in the label over the drawn "
        "windows (stop-gradient), the attention renormalised over them)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("estimator", self.estimator, ESTIMATORS)
        require_choice("topk_pool", self.topk_pool, TOPK_POOLS)
        if not self.attention_channels or min(self.attention_channels) < 1:
            raise ReducerConfigError(
                f"attention_channels needs >= 1 stage of >= 1 channel, "
                f"got {list(self.attention_channels)}"
            )
        if not self.topk_sigma > 0 or self.topk_samples < 1:
            raise ReducerConfigError(
                f"topk_sigma must be > 0 and topk_samples >= 1, got {self.topk_sigma} and "
                f"{self.topk_samples}"
            )
        if not 0 <= self.attention_smoothing < 1:
            raise ReducerConfigError(
                f"attention_smoothing must be in [0, 1), got {self.attention_smoothing}"
            )
        if self.attention_smoothing > 0 and self.estimator != "sampling":
            raise ReducerConfigError(
                "attention_smoothing mixes the uniform distribution into the attention that "
                "estimator=sampling draws from; perturbed_topk draws nothing from it (set "
                "attention_smoothing: 0)"
            )
        if self.topk_sigma_decay and self.estimator != "perturbed_topk":
            raise ReducerConfigError(
                "topk_sigma_decay decays perturbed_topk's noise; estimator=sampling has none "
                "(set topk_sigma_decay: false)"
            )
        if self.entropy_weight < 0:
            raise ReducerConfigError(f"entropy_weight must be >= 0, got {self.entropy_weight}")
        for name in ("confidence_weight",):
            weight = getattr(self, name)
            if weight < 0:
                raise ReducerConfigError(f"{name} must be >= 0, got {weight}")
            if weight > 0 and self.estimator != "sampling":
                raise ReducerConfigError(
                    f"{name} trains the attention distribution of estimator=sampling over the "
                    f"windows it draws; perturbed_topk reads mixed glimpses, not drawn "
                    f"windows (set {name}: 0)"
                )


@register_reducer("attention_windows", AttentionWindowsConfig)
class AttentionWindows(Reducer):
    """``(N, C, H, W) → (N·K, C, h, w)``: K windows per image, chosen by a learned attention
    over multi-scale windows (options: :class:`AttentionWindowsConfig`; estimators: the
    module docstring). :meth:`pool_candidates` turns the K windows' logits into one
    reading; :meth:`chosen_windows` says which windows an evaluation reads."""

    learned = True
    config: AttentionWindowsConfig

    def __init__(
        self,
        config: AttentionWindowsConfig,
        in_channels: int,
        input_size: Size,
        output_size: Size,
    ) -> None:
        super().__init__(config, in_channels, input_size, output_size)
        cells = grid_cells(config.view_size, len(config.attention_channels))
        self.grid = WindowGrid(self.input_size, tuple(config.window_sizes), (cells, cells))
        self.grid.check_selectable(config.windows)
        self.candidates = config.windows
        self.estimator = config.estimator
        self.sampler = WindowSampler(
            self.grid, self.output_size, config.sampling_kernel(), config.antialias
        )
        self.attention = AttentionNet(
            in_channels, tuple(config.attention_channels), len(config.window_sizes)
        )
        self.progress = TrainingProgress()  # for the warm-up and σ's decay
        self._weights: Tensor | None = None  # sampling: w of the last forward (N, K)
        # For the auxiliary loss of a training step: log a (N, P), the draw (N, K) and the
        # classifier's logits on it (N, K, classes), detached.
        self._log_attention: Tensor | None = None
        self._drawn: Tensor | None = None
        self._window_logits: Tensor | None = None

    # ---- attention

    def attention_logits(self, x: Tensor) -> Tensor:
        """``(N, P)`` logits over the grid's windows (index order: scale, row, col)."""
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"{self.name}: built for {self.input_size} inputs, got {tuple(x.shape[-2:])}"
            )
        return self.attention(low_resolution_view(x, self.config.view_size)).flatten(1)

    def scale_mass(self, x: Tensor) -> Tensor:
        """``(N, S)`` attention mass per window size (softmax of the logits, summed over
        positions): which scale the attention prefers."""
        a = torch.softmax(self.attention_logits(x), dim=1)
        return a.view(a.shape[0], len(self.grid.sizes), -1).sum(2)

    # ---- schedules

    def on_step_start(self, step: int, total_steps: int) -> None:
        self.progress.update(step, total_steps)

    def _warming_up(self) -> bool:
        return self.training and self.progress.in_warmup(self.config.selection_warmup)

    def current_sigma(self) -> float:
        """perturbed_topk's σ for the step about to run: ``topk_sigma``, or with
        ``topk_sigma_decay`` ``topk_sigma · (1 − step / total_steps)`` (positive at every
        step, ``topk_sigma / total_steps`` at the last)."""
        sigma = self.config.topk_sigma
        return self.progress.linear_decay(sigma) if self.config.topk_sigma_decay else sigma

    def log_attention(self, logits: Tensor) -> Tensor:
        """``(N, P)`` log-probabilities: ``log_softmax(logits)``, with
        ``attention_smoothing`` ε the log of ``(1 − ε)·softmax + ε/P`` (computed in log
        space, so a peaked attention keeps finite logs)."""
        log_a = torch.log_softmax(logits, dim=1)
        eps = self.config.attention_smoothing
        if eps == 0:
            return log_a
        uniform = torch.full_like(log_a, math.log(eps / log_a.shape[1]))
        return torch.logaddexp(log_a + math.log1p(-eps), uniform)

    # ---- selection

    def _uniform(self, x: Tensor) -> Tensor:
        """``(N, K)`` windows drawn uniformly (the warm-up), in index order."""
        return uniform_choice(len(x), self.grid.count, self.candidates, x.device).sort(1).values

    def _extract(self, x: Tensor, indices: Tensor) -> Tensor:
        with torch.no_grad():  # window positions are discrete: no gradient flows to them
            return self.sampler.extract_selected(x, indices).flatten(0, 1)

    def _select_sampling(self, x: Tensor, logits: Tensor) -> Tensor:
        if self._warming_up():  # the plain mean of uniform draws; the attention waits
            indices = self._uniform(x)
            self._weights = x.new_full(indices.shape, 1.0 / self.candidates)
            return self._extract(x, indices)
        log_a = self.log_attention(logits)
        if self.training:
            indices = gumbel_topk(log_a, self.candidates)
            self._weights = sampling_weights(log_a, indices)
            self._log_attention, self._drawn = log_a, indices
        else:
            indices, self._weights = top_attention(log_a, self.candidates)
            self._log_attention = self._drawn = None
        return self._extract(x, indices)

    def _select_topk(self, x: Tensor, logits: Tensor) -> Tensor:
        if not self.training:
            return self._extract(x, logits.topk(self.candidates, dim=1).indices)
        if self._warming_up():
            return self._extract(x, self._uniform(x))
        config = self.config
        if config.entropy_weight > 0:
            self._log_attention = torch.log_softmax(logits, dim=1)
        indicators = perturbed_topk(
            min_max_normalise(logits), self.candidates, config.topk_samples, self.current_sigma()
        )  # (N, K, P)
        # Glimpse k = Σ_p I_kp · window_p, the paper's linear combination of patches.
        return self.sampler.mix(x, indicators).flatten(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        self._log_attention = self._drawn = None  # set again by a training step that uses them
        logits = self.attention_logits(x)
        if self.estimator == "sampling":
            return self._select_sampling(x, logits)
        return self._select_topk(x, logits)

    # ---- hooks

    def pool_candidates(self, logits: Tensor) -> Tensor:
        """``(N, K, classes) → (N, classes)``. ``sampling``: the estimator's weighted sum
        with the weights of the last forward (training: unbiased for ``E_a[logits]``;
        evaluation: the renormalised attention of the top K). ``perturbed_topk``: max (or
        mean, ``topk_pool``) over the K glimpses."""
        if self.estimator == "perturbed_topk":
            return logits.amax(1) if self.config.topk_pool == "max" else logits.mean(1)
        weights, self._weights = self._weights, None
        self._window_logits = logits.detach() if self.training else None
        return attention_pool(self.name, weights, logits)

    def auxiliary_loss(self, labels: Tensor) -> Tensor | None:
        """After a training step's forward and pool (``None`` in evaluation, in the warm-up
        or when both weights are 0): ``−entropy_weight × H(a)`` (``a``: the attention;
        perturbed_topk: softmax of its logits) plus, sampling only,
        ``confidence_weight × CE(t, â)``, means over the batch. ``t`` is the classifier's
        softmax probability of the label on each drawn window, normalised over the K
        (stop-gradient: a target learned from labels, no box), ``â`` the attention
        renormalised over the same K windows: the attention learns to rank windows as the
        classifier's confidence does."""
        log_a, drawn, window_logits = self._log_attention, self._drawn, self._window_logits
        self._log_attention = self._drawn = self._window_logits = None
        config = self.config
        if log_a is None or (config.entropy_weight == 0 and config.confidence_weight == 0):
            return None
        loss = log_a.new_zeros(())
        if config.entropy_weight > 0:
            entropy = -(log_a.exp() * log_a).sum(1).mean()
            loss = loss - config.entropy_weight * entropy
        if config.confidence_weight > 0:
            if window_logits is None or window_logits.shape[:2] != drawn.shape:
                raise RuntimeError(
                    f"{self.name}: confidence_weight needs the classifier's logits on the "
                    "drawn windows: call pool_candidates before auxiliary_loss"
                )
            confidence = window_logits.log_softmax(2).gather(
                2, labels.view(-1, 1, 1).expand(-1, drawn.shape[1], 1)
            )  # (N, K, 1): log p(label | window)
            target = confidence.squeeze(2).softmax(1)
            ranked = log_a.gather(1, drawn).log_softmax(1)
            loss = loss - config.confidence_weight * (target * ranked).sum(1).mean()
        return loss

    # ---- what was chosen (reports, figures)

    @torch.no_grad()
    def chosen_windows(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """What an evaluation reads for ``x`` ``(N, C, H, W)``: ``(N, K)`` window indices
        (most attended first), ``(N, K, 4)`` their boxes ``(x0, y0, x1, y1)`` in input
        pixels and ``(N, K)`` their weights (sampling: renormalised attention;
        perturbed_topk: the pooled glimpses weigh equally)."""
        was_training = self.training
        self.eval()
        try:
            logits = self.attention_logits(x)
            indices, weights = top_attention(torch.log_softmax(logits, dim=1), self.candidates)
        finally:
            self.train(was_training)
        if self.estimator == "perturbed_topk":
            weights = torch.full_like(weights, 1.0 / self.candidates)
        return indices, self.grid.boxes(indices), weights

    @torch.no_grad()
    def forward_with_theta(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, C, h, w)`` the most attended window of each image, and ``θ``
        ``(N, K, 2, 3)`` of all K windows an evaluation reads, most attended first (the
        report's region figure draws each at its size)."""
        indices, _, _ = self.chosen_windows(x)
        return self._extract(x, indices[:, :1]), self.grid.theta(indices, x.dtype)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.described_options()}
