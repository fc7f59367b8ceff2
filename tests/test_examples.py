"""The fastbp.jit examples in examples/ run, and do what they say."""

from benchmarks.jit_loop import example as load


def test_custom_loss_example_trains_the_network(capsys):
    error = load("custom_loss").main()
    assert error < 0.5  # sin(x) on [-3, 3] learned through the Huber loss, outliers and all
    assert "Huber loss" in capsys.readouterr().out


def test_simulation_example_steers_the_cart_like_the_pd_controller():
    (x, v), (x_pd, v_pd) = load("simulation").main()
    assert abs(x) < 0.05 and abs(x_pd) < 0.05  # both brought the cart from x = 1.5 to the origin
