"""The NumPy LSTM forward pass against a plain per-step reference written from the equations."""

from __future__ import annotations

import numpy as np
import pytest

from sunspots.domain.lstm import DenseLayer, LSTMLayer, network_from_arrays, sigmoid

pytestmark = pytest.mark.unit


def _ref_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference_lstm(x, kernel, recurrent, bias):
    """One sequence at a time, one step at a time, Keras gate order (i, f, c, o)."""
    units = recurrent.shape[0]
    outputs = []
    for seq in x:
        h = np.zeros(units)
        c = np.zeros(units)
        for x_t in seq:
            z = x_t @ kernel + h @ recurrent + bias
            i = _ref_sigmoid(z[:units])
            f = _ref_sigmoid(z[units : 2 * units])
            g = np.tanh(z[2 * units : 3 * units])
            o = _ref_sigmoid(z[3 * units :])
            c = f * c + i * g
            h = o * np.tanh(c)
        outputs.append(h)
    return np.array(outputs)


def random_weights(rng, features, units, scale=0.5):
    return (
        rng.normal(scale=scale, size=(features, 4 * units)),
        rng.normal(scale=scale, size=(units, 4 * units)),
        rng.normal(scale=scale, size=4 * units),
    )


@pytest.mark.parametrize(
    ("n", "steps", "features", "units"), [(1, 1, 1, 3), (7, 10, 1, 5), (4, 6, 2, 8)]
)
def test_lstm_matches_reference(n, steps, features, units):
    rng = np.random.default_rng(n * 100 + steps)
    kernel, recurrent, bias = random_weights(rng, features, units)
    x = rng.normal(size=(n, steps, features))
    got = LSTMLayer.from_keras(kernel, recurrent, bias)(x)
    np.testing.assert_allclose(got, reference_lstm(x, kernel, recurrent, bias), atol=1e-5)


def test_batches_larger_than_a_block_match_reference():
    rng = np.random.default_rng(1)
    kernel, recurrent, bias = random_weights(rng, 1, 4)
    x = rng.normal(size=(1200, 3, 1))
    got = LSTMLayer.from_keras(kernel, recurrent, bias)(x)
    np.testing.assert_allclose(got, reference_lstm(x, kernel, recurrent, bias), atol=1e-5)


def test_each_row_is_independent_of_the_batch():
    rng = np.random.default_rng(2)
    layer = LSTMLayer.from_keras(*random_weights(rng, 1, 6))
    x = rng.normal(size=(9, 5, 1))
    single = np.concatenate([layer(x[i : i + 1]) for i in range(9)])
    np.testing.assert_allclose(layer(x), single, atol=1e-6)


def test_network_applies_dense_layers_with_activations():
    rng = np.random.default_rng(3)
    kernel, recurrent, bias = random_weights(rng, 1, 4)
    d0k, d0b = rng.normal(size=(4, 3)), rng.normal(size=3)
    d1k, d1b = rng.normal(size=(3, 2)), rng.normal(size=2)
    arrays = {
        "lstm/kernel": kernel,
        "lstm/recurrent_kernel": recurrent,
        "lstm/bias": bias,
        "d0/kernel": d0k,
        "d0/bias": d0b,
        "d1/kernel": d1k,
        "d1/bias": d1b,
    }
    spec = [
        {"type": "lstm", "name": "lstm"},
        {"type": "dense", "name": "d0"},
        {"type": "dense", "name": "d1", "activation": "sigmoid"},
    ]
    x = rng.normal(size=(5, 4))  # 2-D input means one feature per step
    want = _ref_sigmoid(
        (reference_lstm(x[:, :, None], kernel, recurrent, bias) @ d0k + d0b) @ d1k + d1b
    )
    np.testing.assert_allclose(network_from_arrays(spec, arrays)(x), want, atol=1e-5)


def test_sigmoid_is_stable_for_extreme_inputs():
    x = np.array([-1e4, -50.0, 0.0, 50.0, 1e4])
    np.testing.assert_allclose(sigmoid(x), _ref_sigmoid(np.clip(x, -700, 700)), atol=1e-12)


def test_bad_shapes_and_specs_are_rejected():
    rng = np.random.default_rng(4)
    kernel, recurrent, bias = random_weights(rng, 1, 4)
    with pytest.raises(ValueError, match="shapes"):
        LSTMLayer.from_keras(kernel[:, :8], recurrent, bias)
    with pytest.raises(ValueError, match="activation"):
        DenseLayer(np.zeros((2, 2)), np.zeros(2), activation="softmax")
    with pytest.raises(ValueError, match="no array"):
        network_from_arrays([{"type": "lstm", "name": "lstm"}], {"lstm/kernel": kernel})
    with pytest.raises(ValueError, match="start with"):
        network_from_arrays([{"type": "dense", "name": "d"}], {})
    arrays = {"lstm/kernel": kernel, "lstm/recurrent_kernel": recurrent, "lstm/bias": bias}
    net = network_from_arrays([{"type": "lstm", "name": "lstm"}], arrays)
    with pytest.raises(ValueError, match="expected input"):
        net(np.zeros((2, 3, 2)))
