"""Checkpoints as one safetensors file: every tensor flattened under a prefix, everything else as
JSON in the file's metadata. Written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint; the temporary file of a killed save is removed by the next save to the
same path (:func:`tracegym.outputs.remove_leftovers`), and SIGTERM removes it before the process
ends unless the caller handles SIGTERM itself (the Trainer finishes the save, then stops).

Tensors::

    model.<name>            the policy's state_dict (compile prefixes stripped)
    ema.<name>              EMA shadow weights (when EMA is on)
    optim.<i>.<key>         optimizer state of parameter i (moments, step)
    rng.torch, rng.numpy, rng.cuda.<d>   random generator states

Metadata (all strings): ``format`` ("tracegym-checkpoint-v1"), ``config`` (TrainConfig JSON),
``task_spec`` (TaskSpec fields), ``policy_config`` (``policy.config``), ``optim_groups`` (param
groups without params), ``trainer`` (step, batches, best metric), ``rng_python``, ``rng_numpy``.

:func:`load_trace_model` rebuilds a trace model from a checkpoint for decoding and evaluation.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tracegym.errors import TracegymError
from tracegym.io import atomic_path
from tracegym.outputs import pause_point, remove_leftovers, signals_clean_up

FORMAT = "tracegym-checkpoint-v1"
_COMPILE_PREFIX = "_orig_mod."


def _clean_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """state_dict with torch.compile's prefix removed and storage made contiguous and unshared."""
    out = {}
    for k, v in module.state_dict().items():
        out[k.replace(_COMPILE_PREFIX, "")] = v.detach().cpu().contiguous().clone()
    return out


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) capturing torch, numpy, python and CUDA generator states."""
    tensors = {"rng.torch": torch.get_rng_state()}
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, np.int64))
    if torch.cuda.is_available():
        for d, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{d}"] = state
    version, internal, gauss = random.getstate()
    meta = {"rng_python": json.dumps([version, list(internal), gauss]),
            "rng_numpy": json.dumps([kind, int(pos), int(has_gauss), float(cached)])}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    kind, pos, has_gauss, cached = json.loads(meta["rng_numpy"])
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss,
                         cached))
    version, internal, gauss = json.loads(meta["rng_python"])
    random.setstate((version, tuple(internal), gauss))
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)


def save_checkpoint(path: str | os.PathLike, *, model: nn.Module, optimizer, ema=None,
                    config: dict, task_spec: dict, policy_config: dict,
                    trainer_state: dict, extra_tensors: dict | None = None) -> Path:
    """Write a checkpoint atomically (temp file + rename); returns the path. ``extra_tensors``
    (``{"prefix.name": tensor}``, e.g. the Trainer's ``act.*`` carry) are stored as given and
    read back with :meth:`Checkpoint.section`."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in _clean_state(model).items()}
    if ema is not None:
        tensors.update({f"ema.{k.replace(_COMPILE_PREFIX, '')}": v.detach().cpu().contiguous()
                        .clone() for k, v in ema.state_dict().items()})
    optim = optimizer.state_dict()
    for i, state in optim["state"].items():
        for key, value in state.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{i}.{key}"] = value.detach().cpu().contiguous().clone()
    groups = [{k: v for k, v in g.items()} for g in optim["param_groups"]]
    rng_tensors, rng_meta = rng_state()
    tensors.update(rng_tensors)
    for k, v in (extra_tensors or {}).items():
        tensors[k] = v.detach().cpu().contiguous().clone()
    metadata = {
        "format": FORMAT,
        "config": json.dumps(config, sort_keys=True),
        "task_spec": json.dumps(task_spec, sort_keys=True),
        "policy_config": json.dumps(policy_config, sort_keys=True, default=str),
        "optim_groups": json.dumps(groups, default=list),
        "trainer": json.dumps(trainer_state, sort_keys=True),
        **rng_meta,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path, tags=("tmp",))  # the temporary file of a save that was killed
    # SIGTERM (unless the Trainer handles it) removes the temporary file before the process ends
    with signals_clean_up(), atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        os.chmod(tmp, 0o644)
        pause_point("rename")
    return path


class Checkpoint:
    """A loaded checkpoint: ``tensors`` (by prefix helpers below) and parsed metadata."""

    def __init__(self, path: str | os.PathLike):
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(path)
        if path.is_dir():
            path = path / "checkpoint.safetensors"
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint: no such file {str(path)!r}")
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            self.tensors = load_file(str(path))
        except Exception as err:  # safetensors raises its own error types for corrupt files
            raise TracegymError(f"checkpoint: {str(path)!r} is not a safetensors file "
                                f"({err})") from err
        if meta.get("format") != FORMAT:
            raise TracegymError(f"checkpoint: {str(path)!r} has format "
                                f"{meta.get('format')!r}, expected {FORMAT!r}")
        self.path = path
        self.meta = meta
        self.config = json.loads(meta["config"])
        self.task_spec = json.loads(meta["task_spec"])
        self.policy_config = json.loads(meta["policy_config"])
        self.trainer_state = json.loads(meta["trainer"])

    def section(self, prefix: str) -> dict[str, torch.Tensor]:
        n = len(prefix) + 1
        return {k[n:]: v for k, v in self.tensors.items() if k.startswith(prefix + ".")}

    @property
    def has_ema(self) -> bool:
        """Whether the run kept EMA weights (``ema > 0``)."""
        return any(k.startswith("ema.") for k in self.tensors)

    def weights_used(self, weights: str) -> str:
        """The weights :meth:`load_model` loads when asked for ``weights``: ``"ema"`` only when
        the checkpoint has them."""
        if weights not in ("ema", "model"):
            raise TracegymError(f"weights must be 'ema' or 'model', got {weights!r}")
        return "ema" if weights == "ema" and self.has_ema else "model"

    def load_model(self, model: nn.Module, *, weights: str = "model") -> None:
        """Load ``"model"`` or ``"ema"`` weights (EMA falls back to model when absent: see
        :meth:`weights_used`)."""
        state = self.section(self.weights_used(weights))
        target = model._orig_mod if hasattr(model, "_orig_mod") else model
        target.load_state_dict(state)

    def load_optimizer(self, optimizer) -> None:
        groups = json.loads(self.meta["optim_groups"])
        current = optimizer.state_dict()
        if len(groups) != len(current["param_groups"]):
            raise TracegymError(f"checkpoint: optimizer has {len(groups)} parameter groups, "
                                f"the model now gives {len(current['param_groups'])}")
        state: dict[int, dict] = {}
        for k, v in self.section("optim").items():
            i, key = k.split(".", 1)
            state.setdefault(int(i), {})[key] = v
        for g in groups:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
        optimizer.load_state_dict({"state": state, "param_groups": groups})

    def restore_rng(self) -> None:
        set_rng_state({f"rng.{k}": v for k, v in self.section("rng").items()}, self.meta)


def load_trace_model(path: str | os.PathLike, device: str | torch.device = "cpu", *,
                     weights: str = "ema"):
    """A trace model (``trace_lm``, ``trace_diffusion``) from a Trainer checkpoint (file or run
    directory), rebuilt from its ``policy_config`` and put in eval mode on ``device``.

    TracegymError when the checkpoint holds another reasoner or records no tokenizer; ValueError
    when it was made with another tokenizer (the model's ``check_compatible``).
    """
    from tracegym.agents.reasoners import TRACE_REASONERS, build_policy
    from tracegym.tracers.tokenizer import TraceTokenizer

    ckpt = Checkpoint(path)
    config = dict(ckpt.policy_config)
    if config.get("reasoner") not in TRACE_REASONERS:
        raise TracegymError(f"checkpoint {str(ckpt.path)!r} holds a {config.get('reasoner')!r} "
                            f"model, not a trace model ({', '.join(TRACE_REASONERS)})")
    if not isinstance(config.get("tokenizer"), dict):
        raise TracegymError(f"checkpoint {str(ckpt.path)!r} records no tokenizer")
    TraceTokenizer().check_compatible(config["tokenizer"])
    model = build_policy(**config)
    ckpt.load_model(model, weights=weights)
    return model.to(device).eval()
