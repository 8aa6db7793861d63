"""The cost model (host/microrl_host/sim/cost.py) and the on-board time estimates built on it
(sim/board_time.py), without QEMU: the committed fit against the committed bench-mcu table, the
counts against a hand count, the fit on synthetic measurements, the estimate's arithmetic, and the
board profiles' timing fields."""

import json
from pathlib import Path

import pytest

from microrl_host import cli
from microrl_host.bench import boards as bench_boards, mcu
from microrl_host.board import boards
from microrl_host.board.boards import Profile, load_profile, profile_names
from microrl_host.mirror.config import TD3Config
from microrl_host.sim import board_time, calibrate, cost

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
TOLERANCE = 0.25  # the model against the measured table, relative


def test_model_agrees_with_the_committed_table():
    runs = calibrate.table_runs((RESULTS / "mcu.md").read_text())
    model = cost.load_model()
    planned = {(p.name, backend) for p, _, backend, _ in mcu.plan()}
    estimated = {(p, b) for p in profile_names() if load_profile(p).qemu_core
                 for b in board_time.backends(load_profile(p))}
    assert estimated <= planned  # bench-mcu measures every backend an estimate is given for
    # The table has a row of every run bench-mcu plans, but those of a backend the model has no
    # fit for yet (vfp, until bench-mcu --calibrate measures it): those the model refuses.
    tabled = {(run["board"], run["backend"]) for run in runs}
    assert tabled <= planned
    for board, backend in planned - tabled:
        core = load_profile(board).qemu_core
        assert "%s-%s" % (core, backend) not in model["groups"], (board, backend)
        with pytest.raises(cost.CostModelError, match="no group %s-%s" % (core, backend)):
            cost.predict(load_profile(board).learner, core, backend,
                         load_profile(board).heap_bytes, model)
    for run in runs:
        p = cost.predict(run["learner"], run["core"], run["backend"], run["heap_bytes"], model)
        for name in ("critic_update", "full_update", "update", "trainer_step"):
            error = (p[name] - run[name]) / run[name]
            assert abs(error) < TOLERANCE, (
                "%s, %s, %s: model %.3g, mcu.md %.3g: recalibrate (bench-mcu --calibrate)"
                % (run["board"], run["backend"], name, p[name], run[name]))


def test_table_rows_parse():
    md = (RESULTS / "mcu.md").read_text()
    pico = [r for r in calibrate.table_runs(md) if r["board"] == "rp2-pico"]
    assert [r["backend"] for r in pico] == ["pure", "pyasm", "ulab", "viper"]
    assert pico[0]["core"] == "m0" and pico[0]["heap_bytes"] == 196608
    assert pico[0]["learner"] == pico[1]["learner"]
    assert TD3Config.from_dict(pico[0]["learner"]).batch_size == pico[0]["learner"]["batch_size"]
    assert calibrate._number("12.3 M") == 12.3e6 and calibrate._number("46.9 k") == 46900.0
    assert calibrate._number("MemoryError") is None


def test_committed_fit_is_the_fit_of_the_committed_calibration():
    calibration = json.loads((RESULTS / "mcu_calibration.json").read_text())
    model = cost.load_model()
    refit = calibrate.fit(calibration)
    assert refit["device"] == model["device"] == calibration["device"]
    groups = {"m0-pure", "m0-pyasm", "m0-ulab", "m0-viper", "m7-pure", "m7-pyasm", "m7-ulab",
              "m7-viper"}
    assert sorted(refit["groups"]) == sorted(model["groups"])
    assert groups <= set(model["groups"]) <= groups | {"m7-vfp"}  # vfp once calibrated
    for key, group in model["groups"].items():
        assert group["runs"] >= 30  # widths 8-32, batches 8-64, micro-batches on and off
        for name, value in group["coefficients"].items():
            assert refit["groups"][key]["coefficients"][name] == pytest.approx(value, rel=1e-6,
                                                                                  abs=1e-9)


def test_calibration_covers_widths_batches_and_micro_batches():
    points = calibrate.calibration_points()
    for core in ("m0", "m7"):
        mine = [p["learner"] for p in points if p["core"] == core]
        assert {w for p in mine for w in p["critic_hidden"]} >= {8, 12, 16, 24, 32}
        assert {p["batch_size"] for p in mine} >= {8, 16, 32, 64}
        assert any(p["micro_batch"] for p in mine) and any(not p["micro_batch"] for p in mine)
        assert {p["replay"] for p in mine} == {"float", "compressed"}
        for learner in mine:
            TD3Config.from_dict(learner)


def test_multiply_adds_by_hand():
    # actor 3-4-1 (16 weights), critics 4-5-1 (25 weights), batch 2
    config = TD3Config(actor_hidden=(4,), critic_hidden=(5,), batch_size=2, buffer_capacity=10)
    critic = cost.critic_update_counts(config, "ulab")
    # target actor 2x16, two target critics 2x2x25; each critic: forward 2x25, x^T d 2x25 and
    # d w^T into the hidden layer 2x5
    assert critic["mac"] == 32 + 100 + 2 * (50 + 50 + 10) == 352
    full = cost.full_update_counts(config, "ulab")
    # actor forward 32, critic forward 50, its input gradient 2x5 + 2x20, actor x^T d 32 and d w^T 8
    assert full["mac"] == 352 + 32 + 50 + 50 + 40 == 524
    assert cost.update_macs(config) == (352 + 524) / 2
    # Adam over both critics (31 parameters each), the actor (21), Polyak over all three
    assert critic["param"] == 62 and full["param"] == 62 + 21 + 21 + 62
    assert critic["row"] == 2 + 2  # the draw and decode, the smoothing noise
    assert critic["row_compressed"] == 0
    halves = cost.critic_update_counts(TD3Config(actor_hidden=(4,), critic_hidden=(5,),
                                                 batch_size=2, micro_batch=1, buffer_capacity=10,
                                                 replay="compressed"), "pure")
    assert halves["mac"] == 352 and halves["row_compressed"] == 2
    assert halves["call"] > cost.critic_update_counts(config, "pure")["call"]  # two passes
    assert halves["op"] > cost.critic_update_counts(config, "pure")["op"]


def test_counts_follow_each_backend():
    """vfp's products and Adam are assembler calls (no ulab operation); ulab and vfp decode
    compressed replay in one viper call and six K.affine operations for the pendulum (pure and
    viper: in Python, per row)."""
    config = TD3Config(actor_hidden=(4,), critic_hidden=(5,), batch_size=2, buffer_capacity=10)
    ulab, vfp = (cost.forward_counts(config, b) for b in ("ulab", "vfp"))
    # two layers: dot, add_bias and relu (1 + 1 + 2 operations), then dot, add_bias and tanh (1)
    assert ulab["op"] == 4 + 3 and ulab["call"] == 3 + 3 + 1 == vfp["call"]  # and the pass
    assert vfp["op"] == 1  # the output's tanh: the products and the bias and ReLU make none
    assert {k: v for k, v in vfp.items() if k != "op"} == {k: v for k, v in ulab.items()
                                                           if k != "op"}
    assert cost.forward_counts(config, "viper") == ulab  # the table the fits were made with
    critic = {b: cost.critic_update_counts(config, b) for b in cost.OPS}
    # the products of a critic update: the target actor's forward (2 layers), the two target
    # critics' (2 each), each critic's forward (2) and backward (x^T d and the column sums of
    # both layers, the hidden delta), ulab's operations 1, 1, 2, 3, 2 and 4 a call
    products = {"dot": 10, "add_bias": 10, "relu": 5, "dot_tn": 4, "sum_rows": 4,
                "dot_nt_relu": 2}
    # and the two critics' Adam steps (17 operations each on ulab, two assembler calls on vfp)
    assert critic["ulab"]["op"] - critic["vfp"]["op"] == 10 + 10 + 10 + 12 + 8 + 8 + 2 * 17 == sum(
        n * cost.KERNEL_OPS[k] for k, n in products.items()) + 2 * cost.KERNEL_OPS["adam"]
    assert critic["ulab"]["mac"] == critic["vfp"]["mac"] == 352
    compressed = TD3Config(actor_hidden=(4,), critic_hidden=(5,), batch_size=2,
                           buffer_capacity=10, replay="compressed")
    for backend in cost.OPS:
        more = {k: v - critic[backend][k]
                for k, v in cost.critic_update_counts(compressed, backend).items()}
        if backend in cost.MACHINE_DECODE:
            # _codes and five K.affine calls; obs, next_obs, sa, next_sa one operation each, the
            # reward two; their elements: 2 rows x (3 + 3 + 4 + 4 + 1)
            # (pyasm's affine is machine code: no ulab operation)
            assert more == dict.fromkeys(cost.COUNTS, 0) | {
                "row_compressed": 2, "call": 6, "op": 6 * cost.OPS[backend]["affine"], "elem": 30}
        else:
            assert more == dict.fromkeys(cost.COUNTS, 0) | {"row_compressed": 2}
    with pytest.raises(cost.CostModelError, match="no counts for backend 'numpy'"):
        cost.forward_counts(config, "numpy")
    # ulab on the Cortex-M0 computes its products with kernels_thumb: counted as vfp's
    assert [cost.counted_backend(c, b) for c, b in (("m0", "ulab"), ("m7", "ulab"), ("m0", "pure"),
                                                     ("m7", "vfp"), ("m0", "viper"),
                                                     ("m0", "pyasm"), ("m7", "pyasm"))] == [
        "thumb", "ulab", "pure", "vfp", "viper", "pyasm", "pyasm"]
    # pyasm: the products, Adam and Polyak are machine code, the smaller kernels Python loops
    assert critic["pyasm"]["op"] < critic["pure"]["op"]
    assert {k: v for k, v in critic["pyasm"].items() if k != "op"} == {
        k: v for k, v in critic["pure"].items() if k != "op"}
    assert cost.forward_counts(config, "thumb") == vfp
    assert critic["thumb"] == critic["vfp"]


def test_nnls():
    a = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    assert list(calibrate.nnls(a, [1.0, 2.0, 3.0])) == pytest.approx([1.0, 2.0])
    assert list(calibrate.nnls(a, [-1.0, -2.0, -3.0])) == [0.0, 0.0]
    assert list(calibrate.nnls(a, [3.0, -2.0, 1.0])) == pytest.approx([2.0, 0.0])


def _synthetic_run(model, learner, core, backend, heap_bytes):
    """A bench-mcu run whose measurements are the model's own predictions."""
    group = model["groups"]["%s-%s" % (core, backend)]
    config = TD3Config.from_dict(learner)
    p = cost.predict(learner, core, backend, heap_bytes, model)
    free = int(round(cost.free_bytes(config, heap_bytes, group)))
    step = p["trainer_step"]
    benchmarks = {name: {"instructions": p[name]} for name in
                  ("critic_update", "full_update", "actor_forward", "env_step")}
    benchmarks["trainer_step"] = {"instructions": step}
    return {"board": "x", "core": core, "backend": backend, "heap_bytes": heap_bytes,
            "learner": learner, "error": None,
            "summary": {"heap_free_after_construction_bytes": free, "benchmarks": benchmarks,
                        "update_mean_instructions": p["update"]}}


def _model(**coefficients):
    group = {"coefficients": dict.fromkeys(cost.FEATURES, 0.0),
             "free_heap": {"base_bytes": 20000.0, "per_data_byte": 1.0},
             "actor_forward": dict.fromkeys(cost.FORWARD_FEATURES + ("pass",), 0.0),
             "env_step_instructions": 500.0, "store_float_instructions": 200.0,
             "store_compressed_instructions": 300.0}
    group["coefficients"].update(coefficients)
    group["actor_forward"]["pass"] = 1000.0
    return {"device": "test", "features": list(cost.FEATURES), "groups": {"m7-ulab": group}}


def test_fit_recovers_known_coefficients():
    truth = _model(mac=20.0, elem=5.0, param=100.0, row=15000.0, op=1500.0, update=50000.0,
                   gc_op=800.0)
    truth["groups"]["m7-ulab"]["actor_forward"].update(mac=3.0, op=2000.0)
    runs = [_synthetic_run(truth, {"actor_hidden": [w, w], "critic_hidden": [w, w],
                                   "batch_size": b, "micro_batch": mb, "buffer_capacity": 500},
                           "m7", "ulab", heap)
            for w in (8, 16, 32) for b in (8, 32, 64) for mb in (0, 4)
            for heap in (196608, 460800)]
    fitted = calibrate.fit({"device": "test", "runs": runs})["groups"]["m7-ulab"]
    for name, value in truth["groups"]["m7-ulab"]["coefficients"].items():
        assert fitted["coefficients"][name] == pytest.approx(value, rel=1e-6, abs=1e-6), name
    assert fitted["free_heap"]["per_data_byte"] == pytest.approx(1.0, rel=1e-4)
    assert fitted["max_relative_error"] < 1e-6  # updates, Trainer.step, actor forward
    assert fitted["store_compressed_instructions"] is None  # no compressed run


def test_model_refuses_what_it_does_not_count():
    for field in ({"prioritized": True}, {"act_int8": True}, {"adam_state": "int16"}):
        with pytest.raises(cost.CostModelError, match="does not count"):
            cost.predict(dict(field, buffer_capacity=500), "m0", "ulab", 196608)
    with pytest.raises(cost.CostModelError, match="no fit for m3"):
        cost.predict({"buffer_capacity": 500}, "m3", "ulab", 196608)
    model = cost.load_model()
    if "m7-vfp" not in model["groups"]:  # before bench-mcu --calibrate has measured vfp
        with pytest.raises(cost.CostModelError, match=r"the cost model has no fit for m7 with vfp "
                           r"\(no group m7-vfp; fitted: m0-pure, .*\): bench-mcu --calibrate"):
            cost.predict({"buffer_capacity": 500}, "m7", "vfp", 196608, model)
    without = {"device": "test", "groups": {k: g for k, g in model["groups"].items()
                                            if k != "m7-vfp"}}
    with pytest.raises(cost.CostModelError, match="no group m7-vfp"):
        cost.predict({"buffer_capacity": 500}, "m7", "vfp", 196608, without)
    with pytest.raises(cost.CostModelError, match="heap bytes free"):  # 10 000 floats in 192K
        cost.predict({"buffer_capacity": 10000}, "m0", "ulab", 196608)


def _profile(**fields):
    base = dict(name="fake", description="a fake board", heap_bytes=196608, float_bits=32,
                ulab=True, clock_hz=100_000_000, core="Cortex-M0+", qemu_core="m7",
                cpi=[1.0, 2.0], cpi_source="made up for the test")
    base.update(fields)
    return Profile(**base)


def test_time_to_first_reach_minus_200_for_a_fake_run():
    model = _model(update=1e6)  # an update of 1 M instructions per pass: critic 1 M, full 2 M
    config = TD3Config(actor_hidden=(8, 8), critic_hidden=(8, 8), batch_size=16,
                       buffer_capacity=500, learning_starts=500, eval_every=1000,
                       eval_episodes=10, episode_steps=200, total_steps=6000)
    profile = _profile()
    ulab, pyasm, pure = board_time.estimate(profile, config, [3000, 5000, None], model)
    assert pyasm == {"backend": "pyasm", "qemu_core": "m7",  # stock firmware on a Cortex-M
                     "error": "the cost model has no fit for m7 with pyasm (no group m7-pyasm; "
                              "fitted: m7-ulab): bench-mcu --calibrate measures it"}
    assert pure["error"].startswith("the cost model has no fit for m7 with pure (no group")
    counts = ulab["counts"]
    assert counts["update"] == pytest.approx(1.5e6)
    assert counts["actor_forward"] == 1000.0 and counts["env_step"] == 500.0
    assert counts["trainer_step"] == pytest.approx(1.5e6 + 1000 + 500 + 200)
    solve = ulab["solve"]  # the median of the seeds that reached -200: 4000 steps
    assert (solve["steps"], solve["updates"], solve["evaluations"]) == (4000, 3500, 4)
    assert (solve["seeds_reached"], solve["seeds"]) == (2, 3)
    assert solve["evaluation_instructions"] == 10 * 200 * (1000 + 500)
    # updates, then steps past the warm-up (act, env, store) and warm-up steps (env, store)
    expected = 3500 * 1.5e6 + 3500 * 1700 + 500 * 700 + 4 * 3e6
    assert solve["instructions"] == pytest.approx(expected)
    assert solve["s"] == pytest.approx([expected * 1.0 / 1e8, expected * 2.0 / 1e8])
    assert ulab["update_s"] == pytest.approx([0.015, 0.030])
    assert board_time.duration(solve["s"]) == "0.88-1.8 min"
    assert board_time.basis(solve, profile) == (
        "4000 steps: 3500 updates x 1.5 M + 4000 steps x 1.57 k + 4 evaluations x 3 M = "
        "5.27 G instructions, x cpi 1-2 / 100 MHz")
    text = board_time.lines(profile, [ulab, pure])
    assert text[1].startswith("  ulab: 15-30 ms per update (1.5 M instructions); to first reach "
                              "-200: 0.88-1.8 min (median of 2 of 3 seeds, 4000 steps:")
    assert text[2].startswith("  pure: the pure-Python kernels' plain loops (firmware without ulab "
                              "or an inline assembler: CircuitPython): no estimate: the cost "
                              "model has no fit for m7 with pure")
    none = board_time.estimate(profile, config, [None], model)[0]
    assert none["solve"] is None and none["run"]["steps"] == 6000
    assert "did not reach -200; the run's 6000 steps:" in board_time.lines(profile, [none])[1]
    stock = board_time.estimate(_profile(ulab=False, qemu_core="m0"), config, [3000], model)
    assert [(e["backend"], e["qemu_core"], e["error"].split(" (")[0]) for e in stock] == [
        ("pyasm", "m0", "the cost model has no fit for m0 with pyasm"),
        ("pure", "m0", "the cost model has no fit for m0 with pure")]
    xtensa = board_time.estimate(_profile(ulab=False, core="Xtensa LX6"), config, [3000], model)
    assert [e["backend"] for e in xtensa] == ["viper", "pure"]  # stock ESP32 firmware: viper
    assert board_time.lines(load_profile("unix"), []) == []


def test_a_thumb_fpu_board_is_estimated_with_vfp():
    """On a Thumb-2 core with an FPU the ulab firmware computes the products in kernels_vfp on
    its own: its estimate is vfp's (m7-vfp), and a line says what vfp is."""
    assert board_time.backends(load_profile("rp2-pico2")) == ("vfp", "pyasm", "pure")
    assert board_time.backends(load_profile("pyboard-v11")) == ("vfp", "pyasm", "pure")
    assert board_time.backends(load_profile("esp32")) == ("ulab", "viper", "pure")  # Xtensa
    assert board_time.backends(_profile(ulab=False, thumb_fpu=True)) == ("pyasm", "pure")
    model = _model(update=1e6)
    model["groups"]["m7-vfp"] = dict(model["groups"]["m7-ulab"],
                                     coefficients=dict.fromkeys(cost.FEATURES, 0.0) | {
                                         "update": 4e5})
    config = TD3Config(actor_hidden=(8, 8), critic_hidden=(8, 8), batch_size=16,
                       buffer_capacity=500, total_steps=6000)
    profile = _profile(thumb_fpu=True, core="Cortex-M33")
    vfp, pyasm, pure = board_time.estimate(profile, config, [3000], model)
    assert vfp["backend"] == "vfp" and vfp["counts"]["update"] == pytest.approx(6e5)
    text = board_time.lines(profile, [vfp, pyasm])
    assert text[1].startswith("  vfp: ulab firmware, the products in Thumb-2 VFP assembler "
                              "(kernels_vfp): 6-12 ms per update (600 k instructions)")
    assert text[2].startswith("  pyasm: stock firmware (no ulab), the pure-Python backend's "
                              "products, Adam and target updates in machine code (kernels_pyasm): "
                              "no estimate: the cost model has no fit for m7 with pyasm")
    result = {"board": "rp2-pico2", "learner": load_profile("rp2-pico2").learner,
              "float_bits": 32, "runs": [{"first_step_at_minus_200": 3000,
                                          "final_eval_return": -150.0}],
              "board_time": [vfp, pyasm, pure]}
    md = bench_boards.markdown([result]).splitlines()
    assert md[2].split(" | ")[-2] == "vfp 6-12 ms; pyasm -; pure -"
    assert md[-3:] == [  # the table says what pure, pyasm and vfp are
        "- pure: the pure-Python kernels' plain loops (firmware without ulab or an inline "
        "assembler: CircuitPython)",
        "- pyasm: stock firmware (no ulab), the pure-Python backend's products, Adam and target "
        "updates in machine code (kernels_pyasm)",
        "- vfp: ulab firmware, the products in Thumb-2 VFP assembler (kernels_vfp)"]
    del model["groups"]["m7-vfp"]  # before calibration: the estimate says which fit is missing
    vfp = board_time.estimate(profile, config, [3000], model)[0]
    assert "no group m7-vfp" in vfp["error"]
    assert board_time.lines(profile, [vfp])[1].startswith(
        "  vfp: ulab firmware, the products in Thumb-2 VFP assembler (kernels_vfp): no estimate: "
        "the cost model has no fit for m7 with vfp")


def test_durations():
    assert board_time.duration([0.0123, 0.0196]) == "12-20 ms"
    assert board_time.duration([0.5, 1.5]) == "0.5-1.5 s"
    assert board_time.duration([600.0, 1200.0]) == "10-20 min"
    assert board_time.duration([3 * 3600.0, 5 * 3600.0]) == "3-5 h"


def test_bench_boards_table_has_the_estimates():
    profile = load_profile("rp2-pico")
    config = TD3Config.from_dict(dict(profile.learner, total_steps=6000))
    estimate = board_time.estimate(profile, config, [4000, None])
    result = {"board": "rp2-pico", "learner": profile.learner, "float_bits": 32,
              "runs": [{"first_step_at_minus_200": 4000, "final_eval_return": -150.0},
                       {"first_step_at_minus_200": None, "final_eval_return": -900.0}],
              "board_time": estimate}
    md = bench_boards.markdown([result]).splitlines()
    assert md[0].endswith("| update on the board (est.) | to first reach -200 on the board "
                          "(est., median) |")
    cells = md[2].split(" | ")
    assert cells[-2] == "ulab %s; pyasm %s; pure %s" % tuple(
        board_time.duration(e["update_s"]) for e in estimate)
    assert cells[-1].startswith("ulab %s; pyasm %s; pure" % tuple(
        board_time.duration(e["solve"]["s"]) for e in estimate[:2]))
    basis = [line for line in md if line.startswith("- rp2-pico, ")]
    assert [line.split(":")[0] for line in basis] == [
        "- rp2-pico, ulab", "- rp2-pico, pyasm", "- rp2-pico, pure"]
    assert all(" 4000 steps: 3500 updates x " in line for line in basis)
    assert all(line.endswith("x cpi 1.22-1.95 / 125 MHz") for line in basis)
    assert md[-1].startswith("- pyasm: stock firmware (no ulab)")  # what pyasm is


# The profiles' timing fields

def test_every_microcontroller_profile_states_its_timing():
    for name in profile_names():
        p = load_profile(name)
        if not p.clock_hz:
            assert p.cpi is None and not p.qemu_core
            continue
        assert p.core and p.qemu_core in ("m0", "m7") and p.cpi_source
        assert 0 < p.cpi[0] <= p.cpi[1] < 3
    assert load_profile("rp2-pico").cpi == (1.22, 1.95)
    assert load_profile("rp2-pico").qemu_core == "m0"
    assert load_profile("pyboard-v11").cpi == (1.70, 1.87)


@pytest.mark.parametrize("fields, message", [
    ({"cpi": [2.0, 1.0]}, "cpi must be [low, high] with 0 < low <= high, got [2.0, 1.0]"),
    ({"cpi": [0, 1.0]}, "0 < low <= high"),
    ({"cpi": [1.3]}, "cpi must be [low, high], two numbers, got [1.3]"),
    ({"cpi": "1.3"}, "two numbers"),
    ({"cpi": [True, 2]}, "two numbers"),
    ({"cpi_source": ""}, "cpi needs cpi_source"),
    ({"clock_hz": 0}, "cpi needs clock_hz > 0"),
    ({"qemu_core": "m9"}, "qemu_core must be one of m0, m3, m7, got 'm9'"),
    ({"core": ""}, "qemu_core needs core"),
    ({"core": 7}, "core must be a string, got 7"),
    ({"cpi": None}, "cpi_source without cpi"),
    ({"thumb_fpu": 1}, "thumb_fpu must be true or false, got 1"),
    ({"thumb_fpu": "yes"}, "thumb_fpu must be true or false, got 'yes'"),
    ({"thumb_fpu": True, "qemu_core": "m0"}, "thumb_fpu needs qemu_core m7, the one QEMU core "
                                             "with an FPU, got 'm0'"),
])
def test_profile_timing_errors(fields, message):
    with pytest.raises(ValueError, match="board profile fake: .*" + _escape(message)):
        _profile(**fields)


def _escape(text):
    import re
    return re.escape(text)


def test_profile_file_with_a_bad_cpi(tmp_path, monkeypatch):
    (tmp_path / "bad.toml").write_text(
        'name = "bad"\ndescription = "d"\nheap_bytes = 1024\nfloat_bits = 32\nulab = false\n'
        'clock_hz = 1000\ncore = "Cortex-M0+"\nqemu_core = "m0"\ncpi = [1.5]\n'
        'cpi_source = "x"\n')
    (tmp_path / "old.toml").write_text(
        'name = "old"\ndescription = "d"\nheap_bytes = 1024\nfloat_bits = 32\nulab = false\n'
        'clock_hz = 1000\n')
    monkeypatch.setattr(boards, "BOARDS_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"board profile bad: cpi must be \[low, high\]"):
        load_profile("bad")
    old = load_profile("old")  # a profile from before the timing fields still loads
    assert (old.core, old.qemu_core, old.cpi, old.cpi_source) == ("", "", None, "")
    assert old.thumb_fpu is False
    (tmp_path / "fpu.toml").write_text((tmp_path / "old.toml").read_text().replace(
        '"old"', '"fpu"') + "thumb_fpu = 1\n")
    with pytest.raises(ValueError, match=r"board profile .*fpu.toml: thumb_fpu must be true or "
                                         r"false, got 1"):
        load_profile("fpu")


def test_thumb_fpu_profiles():
    """The Thumb-2 cores with an FPU: RP2350's Cortex-M33 and the STM32F405's Cortex-M4F; not the
    RP2040 (no FPU) nor the ESP32s (Xtensa: no Thumb assembler, though the M7 stands in)."""
    fpu = {name for name in profile_names() if load_profile(name).thumb_fpu}
    assert fpu == {"rp2-pico2", "pyboard-v11"}
    assert all(load_profile(name).qemu_core == "m7" for name in fpu)


# bench-mcu's new options

def test_bench_mcu_config_errors(capsys, tmp_path):
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps([{"name": "a", "core": "m9", "heap_bytes": 1024,
                                    "learner": {}}]))
    assert cli.main(["bench-mcu", "--firmware-dir", str(tmp_path), "--configs",
                     str(configs)]) == 2
    assert "config a: core must be one of m0, m3, m7, got 'm9'" in capsys.readouterr().err
    configs.write_text(json.dumps([{"core": "m0", "heap_bytes": 1024,
                                    "learner": {"batch_size": 0}}]))
    assert cli.main(["bench-mcu", "--firmware-dir", str(tmp_path), "--configs",
                     str(configs)]) == 2
    assert "config config-0: bad learner: batch_size" in capsys.readouterr().err
    assert cli.main(["bench-mcu", "--firmware-dir", str(tmp_path), "--calibrate",
                     "--boards", "rp2-pico"]) == 2
    assert "--calibrate measures every profile" in capsys.readouterr().err
    configs.write_text(json.dumps([{"core": "m0", "heap_bytes": 1024, "learner": {}}]))
    assert cli.main(["bench-mcu", "--firmware-dir", str(tmp_path), "--configs",
                     str(configs), "--backends", "ulab"]) == 2
    assert "lacks m0-ulab-1024.elf (config-0, ulab)" in capsys.readouterr().err
