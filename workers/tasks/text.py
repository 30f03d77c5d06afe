"""Text: next-token prediction where the next token is decided by the very first one.

Each sequence is seq_len tokens drawn uniformly from vocab_size, except that the last token
repeats the first. The model reads the first seq_len - 1 tokens and predicts the last, so
it has to carry one token across seq_len - 2 random distractors: a long-range dependency.
Chance accuracy is 1/vocab_size; at the default sizes Adam at 1e-3..3e-3 gets past 90%
within 200-300 steps with either model. The last 20% of the sequences are held out.
"""

from __future__ import annotations

import torch
from torch import nn

from services.specs import TaskParams
from services.specs import TextTask as TextParams
from workers.tasks.base import DatasetTask, seeded

__all__ = ["VAL_FRACTION", "LstmClassifier", "TransformerClassifier", "build_text", "make_text"]

VAL_FRACTION = 0.2
# Sum of an LSTM's two forget-gate biases at init (sigmoid(3) ~ 0.95): the cell starts out
# remembering, so the gradient from the last step still reaches the first token. With
# torch's default (~0, forget gate ~0.5) an lr that works elsewhere sits at chance for
# thousands of steps on seq_len 32.
FORGET_BIAS = 3.0


def make_text(
    n_samples: int, seq_len: int, vocab_size: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(vocab_size, (n_samples, seq_len), generator=generator)
    return tokens[:, :-1].contiguous(), tokens[:, 0].clone()


class LstmClassifier(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden)
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)
        with torch.no_grad():
            for name, param in self.lstm.named_parameters():
                if name.startswith("bias_"):  # bias_ih_l0 and bias_hh_l0
                    # Gate order in torch's LSTM biases: input, forget, cell, output.
                    param[hidden : 2 * hidden].fill_(FORGET_BIAS / 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.lstm(self.dropout(self.embedding(tokens)))
        logits: torch.Tensor = self.head(self.dropout(outputs[:, -1]))
        return logits

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return [list(m.parameters()) for m in (self.embedding, self.lstm, self.head)]


class TransformerClassifier(nn.Module):
    """One post-norm encoder layer over token + learned position embeddings; the last
    position's output predicts the next token (attention is unmasked, so it sees all)."""

    def __init__(self, vocab_size: int, length: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden)
        self.positions = nn.Parameter(torch.randn(length, hidden) * 0.02)
        heads = next(h for h in (4, 2, 1) if hidden % h == 0)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True
        )
        # Nested tensors only pay off with padding masks; we have none.
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens) + self.positions[: tokens.shape[1]]
        logits: torch.Tensor = self.head(self.encoder(x)[:, -1])
        return logits

    def layer_groups(self) -> list[list[nn.Parameter]]:
        groups = [[*self.embedding.parameters(), self.positions]]
        groups += [list(layer.parameters()) for layer in self.encoder.layers]
        return [*groups, list(self.head.parameters())]


class Text(DatasetTask):
    model: LstmClassifier | TransformerClassifier

    def layer_groups(self) -> list[list[nn.Parameter]]:
        return self.model.layer_groups()


def build_text(params: TaskParams, seed: int, dropout: float) -> Text:
    if not isinstance(params, TextParams):
        raise TypeError(f"text needs TextTask params, got {type(params).__name__}")
    inputs, targets = make_text(params.n_samples, params.seq_len, params.vocab_size, seed)
    with seeded(seed):
        model: LstmClassifier | TransformerClassifier
        if params.model == "transformer":
            model = TransformerClassifier(
                params.vocab_size, params.seq_len - 1, params.hidden, dropout
            )
        else:
            model = LstmClassifier(params.vocab_size, params.hidden, dropout)
    n_train = params.n_samples - round(params.n_samples * VAL_FRACTION)
    return Text(model, (inputs[:n_train], targets[:n_train]), (inputs[n_train:], targets[n_train:]))
