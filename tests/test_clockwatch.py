from edge.clockwatch import ClockWatch


def test_steady_clocks_are_no_step() -> None:
    watch = ClockWatch()
    assert watch.observe(1000.0, 10.0) is None  # the first look only sets the reference
    assert watch.observe(1005.3, 15.0) is None  # 0.3 s of slew or jitter
    assert watch.steps == 0 and watch.last_step is None


def test_a_step_forwards_and_one_back_are_each_reported_once() -> None:
    watch = ClockWatch()
    watch.observe(1000.0, 10.0)
    assert watch.observe(4605.0, 15.0) == 3600.0
    assert watch.observe(4610.0, 20.0) is None  # the new time is the reference now
    step = watch.observe(3010.0, 25.0)
    assert step == -1605.0
    assert (watch.steps, watch.last_step) == (2, -1605.0)


def test_the_threshold_is_the_boundary() -> None:
    watch = ClockWatch(threshold=2.0)
    watch.observe(100.0, 0.0)
    assert watch.observe(111.9, 10.0) is None
    step = watch.observe(124.0, 20.0)
    assert step is not None and abs(step - 2.1) < 1e-9
    assert watch.steps == 1
