"""pytorch/examples' ``vae/main.py`` (a variational autoencoder on MNIST: binary cross-entropy
plus the KL term, Adam), adapted to ``descentlab compare --objective``. The lines changed from
the original end with ``# (changed)``; docs/compare.md counts them. Its command line is parsed at
module level, as the original's is; ``--script-args`` gives it::

    descentlab compare --objective examples/vae.py:main --optimizers adam,adamw --steps 30 \\
        --script-args "--batch-size 64"

``mnist_digits`` (beside this file) stands in for torchvision's ``datasets`` and ``transforms``
with MNIST-shaped digits (no download at run time); the sample images (torchvision's
``save_image``) are left out.
"""

import argparse

import torch
import torch.utils.data
from mnist_digits import datasets, transforms  # (changed: torchvision's)
from torch import nn
from torch.nn import functional as F

from descentlab import Score  # (changed)

parser = argparse.ArgumentParser(description="VAE MNIST Example")
parser.add_argument("--batch-size", type=int, default=128, metavar="N",
                    help="input batch size for training (default: 128)")  # fmt: skip
parser.add_argument("--epochs", type=int, default=10, metavar="N",
                    help="number of epochs to train (default: 10)")  # fmt: skip
parser.add_argument("--no-cuda", action="store_true", default=False,
                    help="disables CUDA training")  # fmt: skip
parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
parser.add_argument("--log-interval", type=int, default=10, metavar="N",
                    help="how many batches to wait before logging training status")  # fmt: skip
args = parser.parse_args()

device = torch.device("cpu")


class VAE(nn.Module):
    def __init__(self):
        super().__init__()

        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")

    # see Appendix B from VAE paper:
    # Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    # https://arxiv.org/abs/1312.6114
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    return BCE + KLD


def train(epoch):
    model.train()
    train_loss = 0
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print(f"Train Epoch: {epoch} [{batch_idx * len(data)}/{len(train_loader.dataset)} "
                  f"({100.0 * batch_idx / len(train_loader):.0f}%)]\t"
                  f"Loss: {loss.item() / len(data):.6f}")  # fmt: skip

    print(f"====> Epoch: {epoch} Average loss: {train_loss / len(train_loader.dataset):.4f}")


def test(epoch):
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for data, _ in test_loader:  # (changed: the reconstruction images left out)
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()

    test_loss /= len(test_loader.dataset)
    print(f"====> Test set loss: {test_loss:.4f}")
    return test_loss  # (changed)


def main(run):  # (changed: the __main__ block, once a trial)
    global model, optimizer, train_loader, test_loader  # (changed)
    torch.manual_seed(run.seed)  # (changed: args.seed)
    train_set = datasets.MNIST(
        "../data", train=True, download=True, transform=transforms.ToTensor(), split=run.split
    )  # (changed)
    sampler = torch.utils.data.RandomSampler(
        train_set, num_samples=run.steps * args.batch_size
    )  # (changed: run.steps batches)
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=args.batch_size, sampler=sampler
    )  # (changed: shuffle=True)
    test_loader = torch.utils.data.DataLoader(
        datasets.MNIST("../data", train=False, transform=transforms.ToTensor(),
                       split=run.split),  # (changed)
        batch_size=args.batch_size, shuffle=False)  # fmt: skip
    model = VAE().to(device)
    optimizer = run.optimizer(model.parameters())  # (changed: optim.Adam(..., lr=1e-3))
    for epoch in range(1, 2):  # (changed: args.epochs; the sampler's epoch is run.steps)
        train(epoch)
        value = test(epoch)  # (changed)
    return Score(value, maximize=False, name="loss")  # (changed)
