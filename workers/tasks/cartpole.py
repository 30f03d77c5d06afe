"""Cart-pole balanced by REINFORCE: a policy MLP, discounted returns normalized per update.

Vocabulary mapped onto `Task`:
- a batch is one policy update: `episodes_per_update` episodes played by the current
  policy. `epoch_batches` only hands out seeds; the episodes are played when `loss` first
  sees the batch, so they always come from the policy of that moment, and skipping batches
  on resume costs nothing. A batch keeps its episodes, so calling `loss` again (L-BFGS's
  closure) re-scores the same episodes under the changed policy.
- an epoch is BATCHES_PER_EPOCH updates (there is no dataset to pass over);
- train_size is episodes_per_update and every batch is that size (`fixed_batches`);
- evaluation plays EVAL_EPISODES greedy episodes from fixed start states.

Episodes act with the policy in eval mode (no dropout noise in behaviour); the loss is
computed in the runner's mode, so dropout, if any, regularizes the gradient only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from services.specs import CartpoleTask as CartpoleParams
from services.specs import TaskParams
from workers.tasks import cartpole_env as env
from workers.tasks.base import Task, linear_groups, mlp_layers, seeded

__all__ = ["BATCHES_PER_EPOCH", "EVAL_EPISODES", "Cartpole", "Episodes", "build_cartpole"]

BATCHES_PER_EPOCH = 10
EVAL_EPISODES = 5


@dataclass
class Episodes:
    """Steps of a set of episodes, flattened: step t of episode e is one row."""

    observations: torch.Tensor  # (rows, 4) float32
    actions: torch.Tensor  # (rows,) long
    remaining: np.ndarray  # (rows,) steps left in the episode from this one, itself included
    lengths: np.ndarray  # (episodes,) = the undiscounted return of each episode


@dataclass
class CartpoleBatch:
    seed: int
    episodes: Episodes | None = field(default=None, repr=False)

    @property
    def returns(self) -> list[float]:
        """Each episode's return, once played (empty before `loss` saw the batch)."""
        return [] if self.episodes is None else [float(n) for n in self.episodes.lengths]


def play(
    policy: nn.Module, rng: np.random.Generator, n: int, max_steps: int, greedy: bool
) -> Episodes:
    """Play n episodes at once; the policy runs in eval mode and without autograd.

    Sampled actions compare a uniform draw from `rng` with the policy's probability of
    pushing right, so the same policy and rng state play the same episodes."""
    device = next(policy.parameters()).device
    was_training = policy.training
    policy.eval()
    states = env.initial_states(rng, n)  # of the episodes still running, in `alive` order
    alive = np.arange(n)
    lengths = np.zeros(n, dtype=np.int64)
    obs_rows, action_rows, episode_rows = [], [], []
    try:
        with torch.inference_mode():
            for _ in range(max_steps):
                obs = states.astype(np.float32)
                logits = policy(torch.from_numpy(obs).to(device)).cpu().numpy()
                gap = logits[:, 1].astype(np.float64) - logits[:, 0]
                if greedy:
                    actions = (gap > 0).astype(np.int64)
                else:
                    # P(right) = softmax(logits)[1] = sigmoid(gap), written with tanh,
                    # which cannot overflow.
                    p_right = 0.5 + 0.5 * np.tanh(0.5 * gap)
                    actions = (rng.random(len(alive)) < p_right).astype(np.int64)
                obs_rows.append(obs)
                action_rows.append(actions)
                episode_rows.append(alive)
                lengths[alive] += 1
                states = env.step_states(states, actions)
                running = ~env.terminated(states)
                states, alive = states[running], alive[running]
                if len(alive) == 0:
                    break
    finally:
        policy.train(was_training)
    # All episodes start together, so the rows of loop turn t are each episode's step t.
    episode = np.concatenate(episode_rows)
    step = np.concatenate([np.full(len(rows), t) for t, rows in enumerate(episode_rows)])
    return Episodes(
        observations=torch.from_numpy(np.concatenate(obs_rows)),
        actions=torch.from_numpy(np.concatenate(action_rows)),
        remaining=lengths[episode] - step,
        lengths=lengths,
    )


def discounted_returns(remaining: np.ndarray, gamma: float) -> np.ndarray:
    """Return-to-go of a step with `remaining` rewards of 1 ahead: sum of gamma^k, k < r."""
    if gamma == 1.0:
        return remaining.astype(np.float64)
    return (1.0 - gamma ** remaining.astype(np.float64)) / (1.0 - gamma)


class Cartpole(Task):
    fixed_batches = True
    surrogate_loss = True

    def __init__(self, params: CartpoleParams, seed: int, model: nn.Module) -> None:
        self.params = params
        self.seed = seed
        self.model = model
        self.train_size = params.episodes_per_update

    def epoch_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[CartpoleBatch]:
        # All of the epoch's draws up front (see Task.epoch_batches); batch_size is moot.
        seeds = torch.randint(2**62, (BATCHES_PER_EPOCH,), generator=generator).tolist()
        for seed in seeds:
            yield CartpoleBatch(seed)

    def batches_per_epoch(self, batch_size: int) -> int:
        return BATCHES_PER_EPOCH

    def loss(self, batch: CartpoleBatch) -> torch.Tensor:
        if batch.episodes is None:
            rng = np.random.default_rng(batch.seed)
            batch.episodes = play(
                self.model, rng, self.train_size, self.params.max_episode_steps, greedy=False
            )
        episodes = batch.episodes
        returns = discounted_returns(episodes.remaining, self.params.gamma)
        # Normalized returns: the mean is the baseline, the scale keeps the step size from
        # depending on episode length, so the lr means the same early and late in training.
        advantages = (returns - returns.mean()) / (returns.std() + 1e-8)
        device = next(self.model.parameters()).device
        log_probs = F.log_softmax(self.model(episodes.observations.to(device)), dim=1)
        chosen = log_probs.gather(1, episodes.actions.to(device).unsqueeze(1)).squeeze(1)
        weights = torch.as_tensor(advantages, dtype=chosen.dtype, device=device)
        return -(chosen * weights).mean()

    def evaluate(self, model: nn.Module | None = None) -> dict[str, float]:
        # The same start states at every evaluation, so val_return moves only with the policy.
        rng = np.random.default_rng([self.seed, 1])
        model = self.model if model is None else model
        lengths = play(
            model, rng, EVAL_EPISODES, self.params.max_episode_steps, greedy=True
        ).lengths
        mean_return = float(lengths.mean())
        limit = self.params.max_episode_steps
        return {"val_loss": (limit - mean_return) / limit, "val_return": mean_return}

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return linear_groups(self.model)

    def batch_examples(self, batch: CartpoleBatch) -> int:
        return self.train_size


def build_cartpole(params: TaskParams, seed: int, dropout: float) -> Cartpole:
    if not isinstance(params, CartpoleParams):
        raise TypeError(f"cartpole needs CartpoleTask params, got {type(params).__name__}")
    with seeded(seed):
        model = nn.Sequential(*mlp_layers([4, params.hidden, 2], dropout))
    return Cartpole(params, seed, model)
