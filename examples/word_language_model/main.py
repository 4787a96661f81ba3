"""pytorch/examples' ``word_language_model`` (an LSTM language model; the best model saved to
``model.pt`` by a relative path and reloaded for the test), adapted to ``descentlab compare
--objective``. ``data.py`` and ``model.py`` are the original's; the lines changed in this file
end with ``# (changed)``, and docs/compare.md counts them. Run from this folder, as the original
is (its corpus is ``./data/...``, relative to where the command runs)::

    cd examples/word_language_model
    descentlab compare --objective main.py:main --optimizers sgd,adam --steps 40 \\
        --script-args "--data ./data/sentences --emsize 32 --nhid 32 --bptt 20"

Each trial runs in a folder of its own, so the ``model.pt`` one trial saves is never another's,
however many run at once (``--workers``). Its lr annealing (``lr /= 4`` where the validation
loss did not improve) divides the trial's lr, so it is the trial's schedule, and runs.
``data/sentences`` is a small corpus of generated sentences standing in for Wikitext-2 (no
download at run time). The Transformer variant and the ONNX export are left out.
"""

import argparse
import math
import time

import data
import model as model_module  # (changed: the name `model` is the network's below)
import torch
import torch.nn as nn

from descentlab import Score  # (changed)

parser = argparse.ArgumentParser(description="PyTorch Wikitext-2 RNN/LSTM/GRU Language Model")
parser.add_argument("--data", type=str, default="./data/wikitext-2",
                    help="location of the data corpus")  # fmt: skip
parser.add_argument("--model", type=str, default="LSTM",
                    help="type of network (RNN_TANH, RNN_RELU, LSTM, GRU)")  # fmt: skip
parser.add_argument("--emsize", type=int, default=200, help="size of word embeddings")
parser.add_argument("--nhid", type=int, default=200, help="number of hidden units per layer")
parser.add_argument("--nlayers", type=int, default=2, help="number of layers")
parser.add_argument("--clip", type=float, default=0.25, help="gradient clipping")
parser.add_argument("--batch_size", type=int, default=20, metavar="N", help="batch size")
parser.add_argument("--bptt", type=int, default=35, help="sequence length")
parser.add_argument("--dropout", type=float, default=0.2,
                    help="dropout applied to layers (0 = no dropout)")  # fmt: skip
parser.add_argument("--tied", action="store_true",
                    help="tie the word embedding and softmax weights")  # fmt: skip
parser.add_argument("--log-interval", type=int, default=200, metavar="N", help="report interval")
parser.add_argument("--save", type=str, default="model.pt",
                    help="path to save the final model")  # fmt: skip
args = parser.parse_args()

device = torch.device("cpu")

###############################################################################
# Load data
###############################################################################

corpus = data.Corpus(args.data)


def batchify(data, bsz):
    # Work out how cleanly we can divide the dataset into bsz parts.
    nbatch = data.size(0) // bsz
    # Trim off any extra elements that wouldn't cleanly fit (remainders).
    data = data.narrow(0, 0, nbatch * bsz)
    # Evenly divide the data across the bsz batches.
    data = data.view(bsz, -1).t().contiguous()
    return data.to(device)


eval_batch_size = 10
train_data = batchify(corpus.train, args.batch_size)
val_data = batchify(corpus.valid, eval_batch_size)
test_data = batchify(corpus.test, eval_batch_size)
ntokens = len(corpus.dictionary)
criterion = nn.NLLLoss()

###############################################################################
# Training code
###############################################################################


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def get_batch(source, i):
    seq_len = min(args.bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].view(-1)
    return data, target


def evaluate(data_source):
    # Turn on evaluation mode which disables dropout.
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(eval_batch_size)
    with torch.no_grad():
        for i in range(0, data_source.size(0) - 1, args.bptt):
            data, targets = get_batch(data_source, i)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(data_source) - 1)


def train(epoch):
    global steps  # (changed: the optimizer steps taken, up to run.steps)
    # Turn on training mode which enables dropout.
    model.train()
    total_loss = 0.0
    start_time = time.time()
    hidden = model.init_hidden(args.batch_size)
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        data, targets = get_batch(train_data, i)
        # Starting each batch, we detach the hidden state from how it was previously produced.
        # If we didn't, the model would try backpropagating all the way to start of the dataset.
        model.zero_grad()
        hidden = repackage_hidden(hidden)
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()

        # `clip_grad_norm` helps prevent the exploding gradient problem in RNNs / LSTMs.
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()  # (changed: p.data.add_(p.grad, alpha=-lr) for each parameter)
        steps += 1  # (changed)

        total_loss += loss.item()

        if batch % args.log_interval == 0 and batch > 0:
            cur_loss = total_loss / args.log_interval
            elapsed = time.time() - start_time
            print(f"| epoch {epoch:3d} | {batch:5d}/{len(train_data) // args.bptt:5d} batches | "
                  f"lr {optimizer.param_groups[0]['lr']:02.2f} | "  # (changed: lr)
                  f"ms/batch {elapsed * 1000 / args.log_interval:5.2f} | "
                  f"loss {cur_loss:5.2f} | ppl {math.exp(cur_loss):8.2f}")  # fmt: skip
            total_loss = 0
            start_time = time.time()
        if steps == run_steps:  # (changed: run.steps optimizer steps, then stop)
            return  # (changed)


def main(run):  # (changed: the script's training, once a trial)
    global model, optimizer, steps, run_steps  # (changed)
    torch.manual_seed(run.seed)  # (changed: args.seed)
    model = model_module.RNNModel(args.model, ntokens, args.emsize, args.nhid, args.nlayers,
                                  args.dropout, args.tied).to(device)  # fmt: skip
    optimizer = run.optimizer(model.parameters())  # (changed: the trial's, for lr = args.lr)
    steps, run_steps = 0, run.steps  # (changed)
    best_val_loss = None
    epoch = 0  # (changed)
    # Loop over epochs.
    while steps < run.steps:  # (changed: for epoch in range(1, args.epochs + 1))
        epoch += 1  # (changed)
        epoch_start_time = time.time()
        train(epoch)
        val_loss = evaluate(val_data)
        print("-" * 89)
        print(f"| end of epoch {epoch:3d} | time: {time.time() - epoch_start_time:5.2f}s | "
              f"valid loss {val_loss:5.2f} | valid ppl {math.exp(val_loss):8.2f}")  # fmt: skip
        print("-" * 89)
        # Save the model if the validation loss is the best we've seen so far.
        if not best_val_loss or val_loss < best_val_loss:
            with open(args.save, "wb") as f:
                torch.save(model, f)
            best_val_loss = val_loss
        else:
            # Anneal the learning rate if no improvement has been seen in the validation dataset.
            for group in optimizer.param_groups:  # (changed: lr /= 4.0)
                group["lr"] /= 4.0  # (changed)

    # Load the best saved model.
    with open(args.save, "rb") as f:
        model = torch.load(f, weights_only=False)
        # after load the rnn params are not a continuous chunk of memory
        # this makes them a continuous chunk, and will speed up forward pass
        model.rnn.flatten_parameters()

    # Run on test data.
    test_loss = evaluate(test_data if run.split == "test" else val_data)  # (changed)
    print("=" * 89)
    print(f"| End of training | test loss {test_loss:5.2f} | test ppl {math.exp(test_loss):8.2f}")
    print("=" * 89)
    return Score(test_loss, maximize=False, name="loss")  # (changed)
