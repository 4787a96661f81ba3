"""Models by name: the MNIST-1D paper's four, small digits nets, logistic regression, the
parameter vector of DeepOBS's noisy quadratic, ResNets for small images and a GPT-2-style
decoder.

What each builds, with its defaults: docs/data-and-models.md.

References:
    Greydanus, "Scaling down deep learning", 2020, https://arxiv.org/abs/2011.14439
    (models: https://github.com/greydanus/mnist1d).
    Ioffe & Szegedy, "Batch normalization", 2015, https://arxiv.org/abs/1502.03167.
    Srivastava et al., "Dropout", JMLR 2014.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from descentlab.problems.convarith import conv_output_shape
from descentlab.problems.data import quadratic_deep_hessian
from descentlab.problems.gpt import GPT
from descentlab.problems.resnet import STEMS, resnet18, resnet20

__all__ = [
    "ACTIVATIONS",
    "MNIST1DCNN",
    "MNIST1DGRU",
    "MNIST1DMLP",
    "MODELS",
    "DigitsCNN",
    "DigitsMLP",
    "MNIST1DCNNActivated",
    "QuadraticDeep",
    "build",
    "check_activation",
    "count_params",
    "default_options",
]


#: The activations the ``activation`` option of ``mlp`` and ``cnn`` (and the character-level
#: transformer's) takes, by name.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "silu": F.silu,
}


def check_activation(name: str, value: Any) -> str:
    """``value`` if it names one of :data:`ACTIVATIONS`; else one line naming ``name``."""
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {', '.join(ACTIVATIONS)}, got {value!r}")
    return value


def count_params(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class Flatten(nn.Module):
    """Flatten everything but the batch dimension (``reshape``, so it works on any layout)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)


class LinearModel(nn.Module):
    """A linear map of the flattened input; ``zero_init`` starts it at zero (logistic regression).

    Args:
        in_features: flattened input size.
        n_outputs: outputs (classes).
        zero_init: set weight and bias to zero instead of torch's default initialisation.
    """

    def __init__(self, in_features: int, n_outputs: int, *, zero_init: bool = False) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, n_outputs)
        if zero_init:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.reshape(x.shape[0], -1))


class MNIST1DMLP(nn.Module):
    """The MNIST-1D paper's MLP with a residual block.

    ``h1 = relu(W1 x + b1)``, ``h2 = h1 + relu(W2 h1 + b2)``, ``y = W3 h2 + b3``.

    Args:
        in_features: flattened input size (40 for MNIST-1D).
        n_outputs: outputs.
        hidden: hidden width (100 in the paper).
        activation: in place of ReLU (:data:`ACTIVATIONS`).
    """

    def __init__(
        self, in_features: int, n_outputs: int, *, hidden: int = 100, activation: str = "relu"
    ) -> None:
        super().__init__()
        self.activation = check_activation("activation", activation)
        self.linear1 = nn.Linear(in_features, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, n_outputs)

    def forward(self, x: Tensor) -> Tensor:
        act = ACTIVATIONS[self.activation]
        h = act(self.linear1(x.reshape(x.shape[0], -1)))
        h = h + act(self.linear2(h))
        return self.linear3(h)


class MNIST1DCNN(nn.Module):
    """The MNIST-1D paper's 3-layer 1-D CNN.

    ``Conv1d(1, c, 5, stride 2, padding 1)``, then twice ``Conv1d(c, c, 3, stride 2,
    padding 1)``, each followed by ReLU, then a linear read-out of the flattened features. For
    length 40 the lengths are 40 -> 19 -> 10 -> 5, so the read-out sees ``5 c = 125`` features.

    Args:
        length: input length.
        n_outputs: outputs.
        channels: channels of every convolution (25 in the paper).

    Inputs of shape ``(N, L)`` or ``(N, 1, L)`` are accepted.
    """

    #: The paper's ReLU; :class:`MNIST1DCNNActivated` takes another.
    activation = "relu"

    def __init__(self, length: int, n_outputs: int, *, channels: int = 25) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        out_len = length
        for conv in (self.conv1, self.conv2, self.conv3):
            (out_len,) = conv_output_shape(
                out_len,
                conv.kernel_size,
                conv.stride,
                conv.padding,  # type: ignore[arg-type]
            )
        self.linear = nn.Linear(channels * out_len, n_outputs)

    def forward(self, x: Tensor) -> Tensor:
        act = ACTIVATIONS[self.activation]
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        h = act(self.conv1(h))
        h = act(self.conv2(h))
        h = act(self.conv3(h))
        return self.linear(h.reshape(h.shape[0], -1))


class MNIST1DCNNActivated(MNIST1DCNN):
    """:class:`MNIST1DCNN` with another activation than ReLU (the same layers, initialised
    alike). A class of its own: code written for the paper's ReLU network (the vectorized
    training kernel, :mod:`descentlab.engine.vcnn`, which takes exactly ``MNIST1DCNN``) never
    takes it for one.

    Args:
        length, n_outputs, channels: as for :class:`MNIST1DCNN`.
        activation: one of :data:`ACTIVATIONS`.
    """

    def __init__(
        self, length: int, n_outputs: int, *, channels: int = 25, activation: str = "tanh"
    ) -> None:
        super().__init__(length, n_outputs, channels=channels)
        self.activation = check_activation("activation", activation)


class MNIST1DGRU(nn.Module):
    """The MNIST-1D paper's GRU: one scalar per time step, read out from every time step.

    A (bidirectional) ``nn.GRU(1, hidden)`` from a zero initial state runs over the ``L``
    samples of the signal; the outputs of all ``L`` steps (``2 hidden`` features each when
    bidirectional) are flattened and mapped linearly to the outputs.

    Args:
        length: input length ``L``.
        n_outputs: outputs.
        hidden: GRU hidden size (6 in the paper).
        bidirectional: run both directions (True in the paper).
    """

    def __init__(
        self, length: int, n_outputs: int, *, hidden: int = 6, bidirectional: bool = True
    ) -> None:
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True, bidirectional=bidirectional)
        self.linear = nn.Linear((2 if bidirectional else 1) * hidden * length, n_outputs)

    def forward(self, x: Tensor) -> Tensor:
        seq = x.reshape(x.shape[0], x.shape[-1], 1)
        out, _ = self.gru(seq)
        return self.linear(out.reshape(out.shape[0], -1))


class DigitsMLP(nn.Sequential):
    """An MLP for 8x8 digits: ``hidden`` blocks of Linear, [BatchNorm1d], ReLU, [Dropout].

    Args:
        in_features: flattened input size (64).
        n_outputs: outputs.
        hidden: widths of the hidden layers.
        dropout: dropout probability after each hidden block (0 disables).
        batch_norm: add ``BatchNorm1d`` between each hidden linear layer and its ReLU.
    """

    def __init__(
        self,
        in_features: int,
        n_outputs: int,
        *,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        layers: list[nn.Module] = [Flatten()]
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, n_outputs))
        super().__init__(*layers)


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 images.

    ``[Conv2d(3x3, padding 1), [BatchNorm2d], ReLU] x len(channels)``, ``MaxPool2d(2)``,
    flatten, [Dropout], ``Linear(hidden)``, ReLU, [Dropout], ``Linear(n_outputs)``.

    Args:
        input_shape: ``(C, H, W)``, e.g. ``(1, 8, 8)``.
        n_outputs: outputs.
        channels: output channels of the convolutions.
        hidden: width of the dense layer.
        dropout: dropout probability before each dense layer (0 disables).
        batch_norm: add ``BatchNorm2d`` after each convolution (which then has no bias).
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_outputs: int,
        *,
        channels: Sequence[int] = (16, 32),
        hidden: int = 64,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        c_in, h, w = input_shape
        convs: list[nn.Module] = []
        for c in channels:
            convs.append(nn.Conv2d(c_in, c, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                convs.append(nn.BatchNorm2d(c))
            convs.append(nn.ReLU())
            c_in = c
        convs.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*convs)
        ph, pw = conv_output_shape((h, w), 2, stride=2)
        head: list[nn.Module] = [Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head += [nn.Linear(c_in * ph * pw, hidden), nn.ReLU()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(hidden, n_outputs))
        self.head = nn.Sequential(*head)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def _sqrtm_psd(q: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (float64), computed
    once per matrix in a process (every run of a comparison builds the model again from the
    same Hessian, and the eigendecomposition costs more than a short run's steps)."""
    q = np.ascontiguousarray(q, dtype=np.float64)
    key = (q.shape, hashlib.sha256(q.tobytes()).hexdigest())
    root = _ROOTS.get(key)
    if root is None:
        eig, vec = np.linalg.eigh(q)
        root = (vec * np.sqrt(np.clip(eig, 0.0, None))) @ vec.T
        _ROOTS[key] = root
        while len(_ROOTS) > 8:
            _ROOTS.pop(next(iter(_ROOTS)))
    return root.copy()


#: :func:`_sqrtm_psd`'s last roots, by the matrix's shape and SHA-256.
_ROOTS: dict[tuple[Any, str], np.ndarray] = {}


class QuadraticDeep(nn.Module):
    """The parameter vector of DeepOBS's noisy quadratic as a model.

    ``forward(x) = (theta - x) Q^{1/2}`` (rows), so that ``0.5 ||forward(x)||^2 =
    0.5 (theta - x)^T Q (theta - x)``, DeepOBS's per-example loss; ``theta`` starts at ones as in
    DeepOBS. ``expected_loss`` gives the population loss
    ``0.5 theta^T Q theta + 0.5 sigma^2 tr(Q)`` for zero-mean noise of standard deviation sigma.

    Args:
        hessian: the ``(d, d)`` symmetric positive definite matrix ``Q`` (float64 recommended);
            defaults to :func:`descentlab.problems.data.quadratic_deep_hessian` of size ``dim``.
        dim: dimension when ``hessian`` is not given.
    """

    def __init__(self, hessian: Tensor | np.ndarray | None = None, *, dim: int = 100) -> None:
        super().__init__()
        if hessian is None:
            q = quadratic_deep_hessian(dim)
        else:
            q = np.asarray(
                hessian.detach().cpu().double() if isinstance(hessian, Tensor) else hessian,
                dtype=np.float64,
            )
        if q.ndim != 2 or q.shape[0] != q.shape[1]:
            raise ValueError(f"hessian must be a square matrix, got shape {q.shape}")
        if not np.allclose(q, q.T, rtol=1e-10, atol=1e-12):
            raise ValueError("hessian must be symmetric")
        self.theta = nn.Parameter(torch.ones(q.shape[0]))
        self.register_buffer("hessian", torch.from_numpy(q).float())
        self.register_buffer("sqrt_hessian", torch.from_numpy(_sqrtm_psd(q)).float())

    def forward(self, x: Tensor) -> Tensor:
        return (self.theta - x) @ self.sqrt_hessian

    def expected_loss(self, noise_std: float) -> Tensor:
        """Population loss ``0.5 theta^T Q theta + 0.5 noise_std^2 tr(Q)`` (float64)."""
        q = self.hessian.double()
        t = self.theta.detach().double()
        return 0.5 * t @ q @ t + 0.5 * noise_std**2 * torch.trace(q)


# --------------------------------------------------------------------------------------------
# registry


def _flat(input_shape: tuple[int, ...]) -> int:
    return math.prod(input_shape)


def _length(name: str, input_shape: tuple[int, ...]) -> int:
    if len(input_shape) == 1 or (len(input_shape) == 2 and input_shape[0] == 1):
        return input_shape[-1]
    raise ValueError(
        f"model {name!r} needs a 1-D signal, input_shape (L,) or (1, L), got {input_shape}"
    )


def _image(name: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) == 3:
        return input_shape  # type: ignore[return-value]
    if len(input_shape) == 2:
        return (1, *input_shape)  # type: ignore[return-value]
    raise ValueError(f"model {name!r} needs an image, input_shape (C, H, W), got {input_shape}")


def _v_pos_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return int(v)


def _v_int_seq(name: str, v: Any) -> tuple[int, ...]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (v,)
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"{name} must be an integer or a sequence of integers >= 1, got {v!r}")
    return tuple(_v_pos_int(name, x) for x in v)


def _v_dropout(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {v!r}")
    return float(v)


def _v_bool(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{name} must be a bool, got {v!r}")
    return v


def _v_any(name: str, v: Any) -> Any:
    return v


def _v_stem(name: str, v: Any) -> str:
    if v not in STEMS:
        raise ValueError(f"{name} must be one of {', '.join(STEMS)}, got {v!r}")
    return str(v)


def _tokens(name: str, input_shape: tuple[int, ...]) -> int:
    if len(input_shape) == 1:
        return input_shape[0]
    raise ValueError(
        f"model {name!r} needs sequences of token ids, input_shape (T,), got {input_shape}"
    )


def _build_quadratic(
    input_shape: tuple[int, ...], n_outputs: int, hessian: Any = None
) -> nn.Module:
    if len(input_shape) != 1 or n_outputs != input_shape[0]:
        raise ValueError(
            "model 'quadratic_deep' needs input_shape (d,) and n_outputs d, got "
            f"input_shape={input_shape}, n_outputs={n_outputs}"
        )
    model = QuadraticDeep(hessian, dim=input_shape[0])
    if model.theta.shape[0] != input_shape[0]:
        raise ValueError(
            f"hessian has size {model.theta.shape[0]} but input_shape is {input_shape}"
        )
    return model


# name -> (defaults, validators, factory(input_shape, n_outputs, **options))
_Spec = tuple[dict[str, Any], dict[str, Callable[[str, Any], Any]], Callable[..., nn.Module]]
_REGISTRY: dict[str, _Spec] = {
    "linear": ({}, {}, lambda s, n: LinearModel(_flat(s), n)),
    "mlp": (
        {"hidden": 100, "activation": "relu"},
        {"hidden": _v_pos_int, "activation": check_activation},
        lambda s, n, **o: MNIST1DMLP(_flat(s), n, **o),
    ),
    "cnn": (
        {"channels": 25, "activation": "relu"},
        {"channels": _v_pos_int, "activation": check_activation},
        lambda s, n, channels, activation: (
            MNIST1DCNN(_length("cnn", s), n, channels=channels)
            if activation == "relu"
            else MNIST1DCNNActivated(_length("cnn", s), n, channels=channels, activation=activation)
        ),
    ),
    "gru": (
        {"hidden": 6, "bidirectional": True},
        {"hidden": _v_pos_int, "bidirectional": _v_bool},
        lambda s, n, hidden, bidirectional: MNIST1DGRU(
            _length("gru", s), n, hidden=hidden, bidirectional=bidirectional
        ),
    ),
    "digits_mlp": (
        {"hidden": (128,), "dropout": 0.0, "batch_norm": False},
        {"hidden": _v_int_seq, "dropout": _v_dropout, "batch_norm": _v_bool},
        lambda s, n, **o: DigitsMLP(_flat(s), n, **o),
    ),
    "digits_cnn": (
        {"channels": (16, 32), "hidden": 64, "dropout": 0.0, "batch_norm": False},
        {
            "channels": _v_int_seq,
            "hidden": _v_pos_int,
            "dropout": _v_dropout,
            "batch_norm": _v_bool,
        },
        lambda s, n, **o: DigitsCNN(_image("digits_cnn", s), n, **o),
    ),
    "logistic": ({}, {}, lambda s, n: LinearModel(_flat(s), n, zero_init=True)),
    "quadratic_deep": ({"hessian": None}, {"hessian": _v_any}, _build_quadratic),
    "resnet20": (
        {"width": 16, "blocks": 3},
        {"width": _v_pos_int, "blocks": _v_pos_int},
        lambda s, n, **o: resnet20(_image("resnet20", s)[0], n, **o),
    ),
    "resnet18": (
        {"width": 64, "stem": "cifar"},
        {"width": _v_pos_int, "stem": _v_stem},
        lambda s, n, **o: resnet18(_image("resnet18", s)[0], n, **o),
    ),
    "gpt": (
        {"d_model": 64, "n_layers": 2, "n_heads": 4, "tied": True, "dropout": 0.0}
        | {"mup": False, "mup_base": 64},
        {
            "mup": _v_bool,
            "mup_base": _v_pos_int,
            "d_model": _v_pos_int,
            "n_layers": _v_pos_int,
            "n_heads": _v_pos_int,
            "tied": _v_bool,
            "dropout": _v_dropout,
        },
        lambda s, n, **o: GPT(_tokens("gpt", s), n, **o),
    ),
}


MODELS: tuple[str, ...] = tuple(_REGISTRY)


def default_options(name: str) -> dict[str, Any]:
    """The options of model ``name`` and their defaults (for help texts and configs).

    Example:
        >>> default_options("digits_cnn")["dropout"]
        0.0
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return dict(_REGISTRY[name][0])


def build(name: str, *, input_shape: Sequence[int], n_outputs: int, **options: Any) -> nn.Module:
    """Build a model by name.

    Args:
        name: one of :data:`MODELS`.
        input_shape: shape of one input example, e.g. ``(40,)`` for MNIST-1D or ``(1, 8, 8)``
            for digits (``Splits.input_shape``).
        n_outputs: number of outputs (``Splits.n_outputs``).
        **options: model options (see :func:`default_options`): ``mlp``: ``hidden``,
            ``activation``; ``cnn``: ``channels``, ``activation``; ``gru``: ``hidden``,
            ``bidirectional``; ``digits_mlp``: ``hidden`` (int or tuple), ``dropout``,
            ``batch_norm``; ``digits_cnn``:
            ``channels`` (tuple), ``hidden``, ``dropout``, ``batch_norm``;
            ``quadratic_deep``: ``hessian``; ``resnet20``: ``width``, ``blocks``;
            ``resnet18``: ``width``, ``stem``; ``gpt``: ``d_model``, ``n_layers``,
            ``n_heads``, ``tied``, ``dropout``, ``mup``, ``mup_base``.

    Returns:
        a freshly initialised ``nn.Module`` (weights from torch's global generator).

    Raises:
        KeyError: unknown name (the message lists the valid names).
        ValueError: bad ``input_shape``/``n_outputs`` or option (named with its value).

    Example:
        >>> _ = torch.manual_seed(0)
        >>> model = build("cnn", input_shape=(40,), n_outputs=10)
        >>> model(torch.zeros(2, 40)).shape, count_params(model)
        (torch.Size([2, 10]), 5210)
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"input_shape must be a sequence of integers, got {input_shape!r}"
        ) from None
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"input_shape must be non-empty with entries >= 1, got {input_shape!r}")
    n_outputs = _v_pos_int("n_outputs", n_outputs)
    defaults, validators, factory = _REGISTRY[name]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for model {name!r}; valid options: {sorted(defaults)}"
        )
    opts = {k: validators[k](k, options.get(k, v)) for k, v in defaults.items()}
    return factory(shape, n_outputs, **opts)
