"""nn modules and optimisers: XOR with SGD and Adam, state dicts, checkpoints, L-BFGS on Rosenbrock."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv.functional as F
from tinygrad_cv import Tensor, nn, optim

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)


def mlp(seed: int) -> nn.Module:
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(2, 8, rng=rng), nn.Tanh(), nn.Linear(8, 1, rng=rng), nn.Sigmoid())


@pytest.mark.parametrize("make_opt,steps", [
    (lambda ps: optim.SGD(ps, lr=0.5, momentum=0.9), 500),
    (lambda ps: optim.Adam(ps, lr=0.05), 500),
])
def test_mlp_learns_xor(make_opt, steps):
    model = mlp(0)
    opt = make_opt(model.parameters())
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(Tensor(X)), Y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.01


def test_named_parameters_are_ordered_and_named_like_pytorch():
    names = [n for n, _ in mlp(0).named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_state_dict_round_trip_is_exact(tmp_path):
    a, b = mlp(1), mlp(2)
    path = tmp_path / "ckpt.npz"
    a.save(str(path))
    b.load(str(path))
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and np.array_equal(pa.data, pb.data) and pa.data.dtype == pb.data.dtype
    b.load_state_dict(a.state_dict())
    assert np.array_equal(b(Tensor(X)).numpy(), a(Tensor(X)).numpy())


def test_load_state_dict_names_the_problem():
    model = mlp(0)
    state = model.state_dict()
    state["0.weight"] = np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"0\.weight.*\(3, 3\).*\(8, 2\)"):
        model.load_state_dict(state)
    with pytest.raises(ValueError, match="missing keys"):
        model.load_state_dict({})


def test_linear_rejects_wrong_input_width():
    with pytest.raises(ValueError, match=r"Linear\(2, 8\).*\(4, 3\)"):
        nn.Linear(2, 8)(Tensor(np.ones((4, 3))))


def test_init_is_seedable():
    assert np.array_equal(nn.init.kaiming_uniform((4, 3), rng=np.random.default_rng(5)),
                          nn.init.kaiming_uniform((4, 3), rng=np.random.default_rng(5)))
    nn.init.manual_seed(3)
    first = nn.Linear(3, 3).weight.data
    nn.init.manual_seed(3)
    assert np.array_equal(first, nn.Linear(3, 3).weight.data)
    w = nn.init.xavier_normal((200, 300), rng=np.random.default_rng(0))
    assert abs(w.std() - np.sqrt(2 / 500)) < 0.002


def test_train_eval_and_zero_grad():
    model = mlp(0)
    model.eval()
    assert not model.training and not model[0].training
    F.mse_loss(model(Tensor(X)), Y).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_sgd_weight_decay_and_adam_match_hand_computation():
    p = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    p.grad = np.array([0.5, 0.5])
    optim.SGD([p], lr=0.1, weight_decay=0.1).step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 0.6, -2.0 - 0.1 * 0.3])
    q = Tensor(np.array([1.0]), requires_grad=True)
    q.grad = np.array([2.0])
    optim.Adam([q], lr=0.1).step()  # first Adam step moves by lr * sign(g)
    np.testing.assert_allclose(q.data, [0.9], rtol=1e-6)


def test_optimizer_state_round_trip_resumes_exactly():
    def run(opt_state=None, steps=5):
        model = mlp(0)
        if opt_state is not None:
            model.load_state_dict(opt_state[0])
        opt = optim.Adam(model.parameters(), lr=0.05)
        if opt_state is not None:
            opt.load_state_dict(opt_state[1])
        for _ in range(steps):
            opt.zero_grad()
            F.mse_loss(model(Tensor(X)), Y).backward()
            opt.step()
        return model, opt

    straight, _ = run(steps=10)
    half, opt = run(steps=5)
    resumed, _ = run((half.state_dict(), opt.state_dict()), steps=5)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_lbfgs_minimises_rosenbrock():
    p = Tensor(np.array([-1.2, 1.0]), requires_grad=True)
    opt = optim.LBFGS([p], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = (1 - p[0]) ** 2 + 100 * (p[1] - p[0] * p[0]) ** 2
        loss.backward()
        return loss

    result = opt.run(closure)
    np.testing.assert_allclose(p.data, [1.0, 1.0], atol=1e-6)
    assert result.iterations > 10 and result.evaluations >= result.iterations


def test_lbfgs_callback_can_stop_early_and_keeps_float32():
    p = Tensor(np.array([3.0, -1.0], dtype=np.float32), requires_grad=True)
    opt = optim.LBFGS([p], max_iter=100)
    seen = []

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    def stop_after_two(it, loss):
        seen.append(loss)
        if it == 2:
            raise StopIteration

    result = opt.run(closure, callback=stop_after_two)
    assert result.iterations == 2 and result.message == "stopped by callback"
    assert p.dtype == np.float32


def test_optimizer_rejects_bad_settings():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([Tensor(np.ones(1), requires_grad=True)], lr=0)
