"""pytorch/examples' ``time_sequence_prediction`` (two stacked LSTM cells learn sine waves, L-BFGS
with a closure), adapted to ``descentlab compare --objective``. The lines changed from its
``train.py`` (and ``generate_sine_wave.py``, whose data are made here) end with ``# (changed)``;
docs/compare.md counts them. Its command line is parsed at module level, as the original's
``__main__`` block does; ``--script-args`` gives it::

    descentlab compare --objective examples/time_sequence_prediction.py:main \\
        --optimizer torch.optim.LBFGS --optimizers adam --steps 6 --lr-trials 2 \\
        --script-args "--length 100"

L-BFGS evaluates the closure up to ``max_iter`` (20) times a step: the comparison says how many
evaluations its steps took (the budget counts steps).
"""

import argparse

import numpy as np
import torch
import torch.nn as nn

from descentlab import Score  # (changed)

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=15, help="steps to run")
parser.add_argument("--length", type=int, default=1000, help="points a wave")  # (changed)
opt = parser.parse_args()  # (changed: at module level, the script's own command line)


def sine_waves(n=100, length=1000, period=20, seed=2):  # (changed: generate_sine_wave.py's)
    rng = np.random.RandomState(seed)
    x = np.arange(length) + rng.randint(-4 * period, 4 * period, n).reshape(n, 1)
    return np.sin(x / 1.0 / period).astype("float64")


class Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTMCell(1, 51)
        self.lstm2 = nn.LSTMCell(51, 51)
        self.linear = nn.Linear(51, 1)

    def forward(self, input, future=0):
        outputs = []
        h_t = torch.zeros(input.size(0), 51, dtype=torch.double)
        c_t = torch.zeros(input.size(0), 51, dtype=torch.double)
        h_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)
        c_t2 = torch.zeros(input.size(0), 51, dtype=torch.double)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for _ in range(future):  # if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        return torch.cat(outputs, dim=1)


def main(run):  # (changed: the __main__ block, called once a trial)
    np.random.seed(0)
    torch.manual_seed(run.seed)  # (changed)
    data = sine_waves(length=opt.length)  # (changed: torch.load("traindata.pt"))
    rows = slice(3, None) if run.split == "val" else slice(6, None)  # (changed: held out)
    input = torch.from_numpy(data[rows, :-1])  # (changed)
    target = torch.from_numpy(data[rows, 1:])  # (changed)
    held = slice(3, 6) if run.split == "val" else slice(0, 3)  # (changed: the split scored)
    test_input = torch.from_numpy(data[held, :-1])  # (changed)
    test_target = torch.from_numpy(data[held, 1:])  # (changed)
    # build the model
    seq = Sequence()
    seq.double()
    criterion = nn.MSELoss()
    # use LBFGS as optimizer since we can load the whole data to train
    optimizer = run.optimizer(seq.parameters())  # (changed: optim.LBFGS(..., lr=0.8))
    # begin to train
    for i in range(run.steps):  # (changed: opt.steps)

        def closure():
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            loss.backward()
            return loss

        optimizer.step(closure)
        # begin to predict, no need to track gradient here
        with torch.no_grad():
            future = 100  # (changed: 1000, and the plots left out)
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            run.report(i + 1, loss.item())  # (changed: print("test loss:", ...))
    return Score(loss.item(), maximize=False, name="mse")  # (changed)
