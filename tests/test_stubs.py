"""The type stubs (.pyi) of the public device API match the modules: every public name of a stubbed
module has a stub and every stub a name, with the same parameters, and the stubs parse."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "device" / "microrl"
STUBBED = sorted(p.stem for p in PACKAGE.glob("*.pyi"))
# What a main.py of one's own builds on: training, the learner and its settings, the board's entry
# points, the weights file, checkpoints and the int8 policy.
PUBLIC_API = {"__init__", "app", "checkpoint", "config", "envs", "mlp", "pendulum", "qactor", "rng",
              "serve", "servo", "td3", "train", "weights"}


def public_names(tree):
    """{name: parameter names (None for a value)} of a module's or class's public top level;
    classes as {name: {member: ...}}. Imports do not count: they are other modules' names."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = node.args
            params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
            if args.vararg:
                params.append("*" + args.vararg.arg)
            if args.kwarg:
                params.append("**" + args.kwarg.arg)
            names[node.name] = params
        elif isinstance(node, ast.ClassDef):
            names[node.name] = public_names(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    names[target.id] = None
    return {k: v for k, v in names.items() if not k.startswith("_") or k == "__init__"
            or k == "__version__"}


def instance_attributes(tree, class_name):
    """The public ``self.x = ...`` names of a class's __init__."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    return {t.attr for n in ast.walk(item) if isinstance(n, ast.Assign)
                            for t in n.targets if isinstance(t, ast.Attribute)
                            and isinstance(t.value, ast.Name) and t.value.id == "self"
                            and not t.attr.startswith("_")}
    return set()


def test_the_public_api_has_stubs():
    assert set(STUBBED) == PUBLIC_API


@pytest.mark.parametrize("module", STUBBED)
def test_stub_matches_its_module(module):
    source = ast.parse((PACKAGE / (module + ".py")).read_text())
    stub = ast.parse((PACKAGE / (module + ".pyi")).read_text())
    have, stubbed = public_names(source), public_names(stub)
    # Helper types the stub adds for its annotations (TypedDict results, aliases) are allowed.
    extra = {k for k in stubbed if k not in have and k in ("TrainResult", "Request", "Environment")}
    for name, value in have.items():
        assert name in stubbed, "%s.%s has no stub" % (module, name)
        if isinstance(value, dict):
            members = {k: v for k, v in stubbed[name].items() if v is not None}
            assert {k: v for k, v in value.items() if v is not None} == members, \
                "%s.%s: methods differ from the stub's" % (module, name)
        elif value is not None:
            assert stubbed[name] == value, "%s.%s%s: the stub has %s" % (module, name, value,
                                                                         stubbed[name])
    assert set(stubbed) - set(have) == extra, "stubs of names %s.py lacks" % module


@pytest.mark.parametrize("module, class_name", [("train", "Trainer"), ("td3", "TD3"),
                                                ("mlp", "MLP"), ("pendulum", "Pendulum"),
                                                ("servo", "Servo"), ("qactor", "QActor"),
                                                ("serve", "Server"),
                                                ("weights", "Upload")])
def test_stub_declares_the_attributes_a_user_reads(module, class_name):
    source = ast.parse((PACKAGE / (module + ".py")).read_text())
    stub = ast.parse((PACKAGE / (module + ".pyi")).read_text())
    declared = {k for k, v in public_names(stub)[class_name].items() if v is None}
    missing = instance_attributes(source, class_name) - declared
    # Buffers and scratch the learner keeps for itself are left out of the stub on purpose.
    internal = {"buffer", "per", "actor_adam", "critic1_adam", "critic2_adam", "batch", "flat",
                "outs", "dx", "scratch", "flat_grads", "reader", "out"}
    assert missing - internal == set(), "%s.%s" % (module, class_name)


def test_config_stub_lists_every_field():
    import re
    source = (PACKAGE / "config.py").read_text()
    table = source[source.index("_FIELDS = ("):source.index("\n)\n")]
    fields = re.findall(r'^\s*"(\w+)", ', table, re.M)
    stub = ast.parse((PACKAGE / "config.pyi").read_text())
    declared = [k for k, v in public_names(stub)["TD3Config"].items() if v is None]
    assert len(fields) == 35 and declared == fields


def test_exported_policy_stub_matches_an_export(tmp_path):
    import numpy as np
    from microrl_host.sim import export

    rng = np.random.default_rng(0)
    sizes = (3, 4, 1)
    params = [rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 1)),
              rng.normal(size=1)]
    export.save_actor(tmp_path / "actor.json", sizes, params)
    export.export(tmp_path / "actor.json", tmp_path / "out")
    exported = public_names(ast.parse((tmp_path / "out" / "policy.py").read_text()))
    stubbed = public_names(ast.parse((REPO / "examples" / "policy" / "policy.pyi").read_text()))
    assert {"SIZES", "actions", "policy", "act"} == set(stubbed)
    for name, value in stubbed.items():
        assert exported[name] == value, name
