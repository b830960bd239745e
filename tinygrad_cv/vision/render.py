"""The optimisation loop shared by style transfer, feature visualisation and Deep Dream.

All three change the *pixels* of an image, not the weights of a network. They differ only in
- how the image is parametrised (raw pixels, or a Fourier spectrum, ...): an ``ImageParam``;
- what is optimised: an ``Objective``, a weighted sum of named terms (content, style, a channel's
  mean activation, ...) that composes with ``+``, ``-`` and ``*`` as in lucent;
- what happens to the image before the network sees it (jitter, scale, ... for visualisation).

``render`` runs the loop with L-BFGS (through SciPy) or Adam, calls callbacks after each step (progress
bars, snapshots), stops cleanly on Ctrl-C, and stops on a NaN/inf loss naming the term, keeping the
last good image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.optim import LBFGS, Adam
from tinygrad_cv.tensor import Tensor

Features = Dict[str, Tensor]
TermFn = Callable[[Features, Tensor], Tensor]


# ---- objectives -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One named scalar function of the network's features (and of the image itself, for priors)."""

    name: str
    fn: TermFn
    layers: Tuple[str, ...] = ()


class Objective:
    """A weighted sum of named terms: ``content + 1e3 * style - tv``, ``channel(a) - channel(b)``.

    Calling it returns the total (a scalar Tensor) and each weighted term's value, so progress bars
    can show every part of a loss.
    """

    def __init__(self, terms: Sequence[Tuple[float, Term]]) -> None:
        self.terms = list(terms)

    @staticmethod
    def term(name: str, fn: TermFn, layers: Sequence[str] = ()) -> "Objective":
        return Objective([(1.0, Term(name, fn, tuple(layers)))])

    @property
    def layers(self) -> List[str]:
        """The layers the terms read, each once, in first-use order."""
        seen: List[str] = []
        for _, t in self.terms:
            seen += [name for name in t.layers if name not in seen]
        return seen

    def __call__(self, features: Features, image: Tensor) -> Tuple[Tensor, Dict[str, float]]:
        total: Any = 0.0
        parts: Dict[str, float] = {}
        for weight, t in self.terms:
            value = t.fn(features, image) * weight
            parts[t.name] = parts.get(t.name, 0.0) + value.item()
            total = value + total
        return total, parts

    def __add__(self, other: "Objective") -> "Objective":
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(self.terms + other.terms)

    def __radd__(self, other: Any) -> "Objective":
        return self if other == 0 else NotImplemented  # lets sum([...]) start from 0

    def __mul__(self, weight: float) -> "Objective":
        if not isinstance(weight, (int, float)):
            return NotImplemented
        return Objective([(w * weight, t) for w, t in self.terms])

    __rmul__ = __mul__

    def reweighted(self, name: str, factor: float) -> "Objective":
        """The same terms, those named ``name`` weighted ``factor`` times as much (nothing is rebuilt)."""
        return Objective([(w * factor if t.name == name else w, t) for w, t in self.terms])

    def __truediv__(self, divisor: float) -> "Objective":
        return self * (1.0 / divisor)

    def __neg__(self) -> "Objective":
        return self * -1.0

    def __sub__(self, other: "Objective") -> "Objective":
        return self + (-other)

    def __repr__(self) -> str:
        return " + ".join(f"{w:g}*{t.name}" for w, t in self.terms) or "0"


# ---- image parametrisations --------------------------------------------------------------------------
class ImageParam:
    """What the optimiser changes, and how it becomes an image.

    ``params`` are the Tensors optimised; ``image()`` returns the (N, 3, H, W) RGB image in [0, 1]
    they describe (differentiably). ``bounds`` are box constraints L-BFGS-B may enforce on the
    params; ``project()`` restores validity after an Adam step.
    """

    params: List[Tensor]
    bounds: Optional[Tuple[float, float]] = None

    def image(self) -> Tensor:
        raise NotImplementedError

    def project(self) -> None:
        """Called after every first-order step; nothing to do by default."""


class PixelParam(ImageParam):
    """The pixels themselves, kept in [0, 1] (by L-BFGS-B bounds, or by clipping after Adam steps)."""

    bounds = (0.0, 1.0)

    def __init__(self, init: Any) -> None:
        data = init.data if isinstance(init, Tensor) else init
        if data.ndim != 4 or data.shape[1] != 3:
            raise ValueError(f"PixelParam: need an (N, 3, H, W) image, got shape {tuple(data.shape)}")
        self.pixels = Tensor(data.astype(np.float32), requires_grad=True)
        self.params = [self.pixels]

    def image(self) -> Tensor:
        return self.pixels

    def project(self) -> None:
        xp = backend.get_array_module(self.pixels.data)
        self.pixels.data = xp.clip(self.pixels.data, 0.0, 1.0)


# ---- the loop ------------------------------------------------------------------------------------------
class NonFiniteLoss(FloatingPointError):
    """A loss term became NaN or inf."""

    def __init__(self, term: str, step: int) -> None:
        super().__init__(f"loss term '{term}' became non-finite at step {step}")
        self.term, self.step = term, step


@dataclass
class StepInfo:
    """What a callback sees after each optimisation step."""

    step: int  # 1-based
    steps: int  # planned total
    loss: float
    parts: Dict[str, float]
    param: ImageParam


@dataclass
class RenderResult:
    image: np.ndarray  # (N, 3, H, W) float32 RGB in [0, 1], on the CPU
    steps: int  # steps completed
    status: str  # "done", "interrupted" or a sentence naming the non-finite term
    history: List[Dict[str, float]] = field(default_factory=list)  # per step: "loss" and every part
    initial: Dict[str, float] = field(default_factory=dict)  # every part at the starting image


Callback = Callable[[StepInfo], None]
FeatureFn = Callable[[Tensor, Sequence[str]], Features]


@dataclass(frozen=True)
class RenderSettings:
    steps: int = 100
    optimizer: str = "lbfgs"  # "lbfgs" (SciPy L-BFGS-B: few steps, best for style transfer) or "adam"
    lr: float = 0.05  # Adam only
    maximize: bool = False  # feature visualisation maximises its objective


def render(
    param: ImageParam,
    features: FeatureFn,
    objective: Objective,
    settings: RenderSettings = RenderSettings(),
    transforms: Sequence[Callable[[Tensor], Tensor]] = (),
    callbacks: Sequence[Callback] = (),
) -> RenderResult:
    """Optimise ``param`` so that ``objective(features(image))`` goes down (or up, if maximize).

    Args:
        features: maps an (N, 3, H, W) RGB [0, 1] image Tensor and a list of layer names to a dict of
            activations (e.g. ``lambda x, layers: vgg(vgg.normalize(x), layers)``).
        transforms: applied in order to the image before ``features`` (random jitter, scale, ...).
        callbacks: called with a StepInfo after every step (raise StopIteration to stop early).
    Returns:
        RenderResult with the final image; on Ctrl-C or a NaN loss, the last good image.
    """
    if settings.optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {settings.optimizer!r}")
    sign = -1.0 if settings.maximize else 1.0
    layers = objective.layers
    history: List[Dict[str, float]] = []
    last_good = [p.data.copy() for p in param.params]
    latest: Dict[str, Any] = {}

    def evaluate() -> Tensor:
        image = param.image()
        x = image
        for transform in transforms:
            x = transform(x)
        total, parts = objective(features(x, layers), image)
        for name, value in parts.items():
            if not math.isfinite(value):
                raise NonFiniteLoss(name, len(history) + 1)
        latest["parts"] = parts
        latest.setdefault("initial", parts)
        return total * sign

    def after_step(step: int, loss: float) -> None:
        for i, p in enumerate(param.params):
            last_good[i] = p.data.copy()
        history.append({"loss": loss * sign, **latest["parts"]})
        info = StepInfo(step, settings.steps, loss * sign, latest["parts"], param)
        for callback in callbacks:
            callback(info)

    status = "done"
    try:
        if settings.optimizer == "lbfgs":
            _run_lbfgs(param, evaluate, after_step, settings.steps)
        else:
            _run_adam(param, evaluate, after_step, settings)
    except KeyboardInterrupt:
        status = "interrupted"
    except NonFiniteLoss as exc:
        status = str(exc)
    except StopIteration:
        status = "stopped by callback"
    if status != "done":
        for p, data in zip(param.params, last_good):
            p.data = data
    image = backend.to_device(param.image().data, "cpu")
    return RenderResult(np.ascontiguousarray(image, dtype=np.float32), len(history), status, history,
                        latest.get("initial", {}))


def _run_lbfgs(param: ImageParam, evaluate: Callable[[], Tensor], after_step: Callable[[int, float], None], steps: int) -> None:
    opt = LBFGS(param.params, max_iter=steps, bounds=param.bounds)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = evaluate()
        loss.backward()
        return loss

    result = opt.run(closure, callback=after_step)
    if result.message == "stopped by callback":
        raise StopIteration


def _run_adam(param: ImageParam, evaluate: Callable[[], Tensor], after_step: Callable[[int, float], None], settings: RenderSettings) -> None:
    opt = Adam(param.params, lr=settings.lr)
    for step in range(1, settings.steps + 1):
        opt.zero_grad()
        loss = evaluate()
        loss.backward()
        opt.step()
        param.project()
        after_step(step, loss.item())
