"""XOR with a 2-4-1 network: the problem a single layer cannot learn."""
import numpy as np

from backprop import Network, gradcheck

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
Y = np.array([[0], [1], [1], [0]], dtype=float)

net = Network.from_sizes([2, 4, 1], activation="tanh", output_activation="sigmoid", seed=0)
history = net.fit(X, Y, epochs=2000, batch_size=1, lr=0.5, seed=0)
print(f"loss {history.loss[0]:.4f} -> {history.loss[-1]:.6f}")
print("predictions:", net.predict(X).round(3).ravel())
print("learned XOR:", bool(np.all((net.predict(X) > 0.5) == (Y > 0.5))))
print("gradients match finite differences:", max(gradcheck(net, X, Y).values()) < 1e-6)
