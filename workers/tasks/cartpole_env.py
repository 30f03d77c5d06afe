"""A batch of classic cart-pole systems (Barto, Sutton & Anderson 1983; CartPole-v1's
constants), stepped together in numpy so that many episodes cost one array op per step.

State per system: (x, x_dot, theta, theta_dot). Action 1 pushes right, 0 pushes left.
Integration is explicit Euler (CartPole-v1's default). An episode terminates when
|x| > 2.4 or |theta| > 12 degrees; every step, the terminating one included, earns 1.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "FORCE_MAG",
    "GRAVITY",
    "LENGTH",
    "MASSCART",
    "MASSPOLE",
    "TAU",
    "THETA_LIMIT",
    "X_LIMIT",
    "initial_states",
    "step_states",
    "terminated",
]

GRAVITY = 9.8
MASSCART = 1.0
MASSPOLE = 0.1
TOTAL_MASS = MASSCART + MASSPOLE
LENGTH = 0.5  # half the pole's length
POLEMASS_LENGTH = MASSPOLE * LENGTH
FORCE_MAG = 10.0
TAU = 0.02  # seconds per step
THETA_LIMIT = 12 * 2 * math.pi / 360
X_LIMIT = 2.4


def initial_states(rng: np.random.Generator, n: int) -> np.ndarray:
    """n start states, each component uniform in [-0.05, 0.05)."""
    return rng.uniform(-0.05, 0.05, size=(n, 4))


def step_states(states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The next states of (n, 4) `states` under (n,) 0/1 `actions`, one Euler step."""
    x, x_dot, theta, theta_dot = states.T
    force = np.where(actions == 1, FORCE_MAG, -FORCE_MAG)
    cos, sin = np.cos(theta), np.sin(theta)
    temp = (force + POLEMASS_LENGTH * theta_dot**2 * sin) / TOTAL_MASS
    theta_acc = (GRAVITY * sin - cos * temp) / (
        LENGTH * (4.0 / 3.0 - MASSPOLE * cos**2 / TOTAL_MASS)
    )
    x_acc = temp - POLEMASS_LENGTH * theta_acc * cos / TOTAL_MASS
    return np.stack(
        [
            x + TAU * x_dot,
            x_dot + TAU * x_acc,
            theta + TAU * theta_dot,
            theta_dot + TAU * theta_acc,
        ],
        axis=1,
    )


def terminated(states: np.ndarray) -> np.ndarray:
    """Which of the (n, 4) `states` end their episode."""
    out: np.ndarray = (np.abs(states[:, 0]) > X_LIMIT) | (np.abs(states[:, 2]) > THETA_LIMIT)
    return out
