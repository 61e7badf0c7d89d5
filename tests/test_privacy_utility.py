"""Stage 09 (lib.stages.privacy_utility): its section's checks, the canaries reaching the training labels and the
unit keys, the DP and regularised settings reaching their units, and the claims at matched utility on planted
leakage tables (a defence below both baseline curves at its accuracy is supported, one above them contradicted)."""
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from lib.core import config
from lib.claims import verdicts as V
from lib.stages import ladder as LD, privacy_utility as PU
from lib.stages import privacy_utility_params as PP


def _params(scale="smoke"):
    p = yaml.safe_load(open("params.yaml"))
    p["scale"] = scale
    return p


@pytest.mark.parametrize("key,edit", [
    ("09_privacy_utility.settings.ann_dp_1.epsilon", lambda s: s["settings"]["ann_dp_1"].__setitem__("epsilon", -1)),
    ("09_privacy_utility.settings.snn.claim", lambda s: s["settings"]["snn"].pop("claim")),
    ("09_privacy_utility.settings.ann.epsilon", lambda s: s["settings"]["ann"].__setitem__("epsilon", 4)),
    ("09_privacy_utility.settings.ann.role", lambda s: s["settings"]["ann"].__setitem__("role", "baseline")),
    ("09_privacy_utility.canaries", lambda s: s.__setitem__("canaries", {"fraction": 0.9, "seed": 0})),
    ("09_privacy_utility.primary.attack", lambda s: s["primary"].__setitem__("attack", "RMIA") or
     s.__setitem__("attacks", ["loss"])),
])
def test_an_invalid_entry_names_its_key(key, edit):
    p = _params("paper")
    edit(p[PP.SECTION])
    with pytest.raises(config.ConfigError, match=re.escape(f"`{key}`")):
        PP.Params.from_params(p, "paper")


def test_canaries_relabel_exactly_their_training_examples_and_enter_the_unit_keys():
    params = _params("smoke")
    sec = PU.Params.from_params(params)
    import torch
    from dataclasses import dataclass

    @dataclass
    class T:
        y_train: torch.Tensor
        y_test: torch.Tensor
        n_classes: int = 3

    y = torch.arange(120) % 3
    base = lambda name: T(y.clone(), torch.arange(30) % 3)   # noqa: E731
    pops = PU.populations(sec, base)
    p = pops["iris"]
    can = p.canaries
    assert len(can) == round(0.05 * len(p.population.index)) and (can.labels != can.original).all()
    loaded = PU.canary_loader(base, pops)("iris").y_train
    changed = np.flatnonzero((loaded != y).numpy())
    assert sorted(changed) == sorted(p.population.index[can.positions])           # only the canaries' labels
    assert (p.population.y[can.positions] == can.labels).all()                     # the attacks score those labels
    st = {s.id: s for s in sec.settings}
    dp_u = PU.units(params, sec, st["ann_dp_4"], p)[0]
    assert dp_u["dp"] == {"epsilon": 4.0, "delta": sec.dp.delta, "max_grad_norm": sec.dp.max_grad_norm}
    assert PU.units(params, sec, st["ann_e10"], p)[0]["epochs"] == 2
    ref = PU.units(params, sec, st["ann"], p)[0]
    assert ref["population"]["canaries"]["n"] == len(can) and "dp" not in ref
    # 08's unit of the same model has no canaries: never the same checkpoint
    lsec = LD.Params.from_params(params)
    l08 = LD.units(params, lsec, LD.Setting("ann", "ann", ("iris",), "ANN", {"lr": ref["lr"]}), p.population)[0]
    from lib.core.train import unit_key
    assert unit_key(l08) != unit_key(ref)


def _leak(defence_auc, defence_acc=80.0):
    rows = []
    for sid, role, kind, acc, auc in (("ann", "reference", "ann", 95.0, 0.70), ("dp1", "dp", "ann", 60.0, 0.52),
                                      ("dp8", "dp", "ann", 85.0, 0.60), ("wd", "regularised", "ann", 75.0, 0.58),
                                      ("snn", "defence", "snn", defence_acc, defence_auc)):
        rows.append(dict(dataset="iris", setting=sid, label=sid, role=role, kind=kind, claim="A: SNN < ANN" if
                         role == "defence" else "", epsilon=np.nan, attack="LiRA online", test_acc=acc,
                         test_acc_se=0.5, gap=0.0, auc=auc, auc_se=0.005, canary_fpr=np.nan, canary_tpr=np.nan,
                         canary_tpr_se=np.nan, canary_in=np.nan, canary_out=np.nan))
    return pd.DataFrame(rows)


def _judge(leak, sec):
    table, claims = PU.claims(leak, sec)
    return V.evaluate({"matched": table}, claims)[0]["our verdict"].iloc[0]


def test_defence_below_both_curves_is_supported_above_is_contradicted_outside_is_not_tested():
    from dataclasses import replace
    sec = PU.Params.from_params(_params("smoke"))
    sec = replace(sec, attacks=("LiRA online",), settings=tuple(
        [PP.Setting("ann", "ann", "reference", "ann"), PP.Setting("snn", "snn", "defence", "snn", claim="A: SNN < ANN"),
         PP.Setting("dp1", "ann", "dp", "dp1", epsilon=1.0), PP.Setting("dp8", "ann", "dp", "dp8", epsilon=8.0),
         PP.Setting("wd", "ann", "regularised", "wd")]), datasets=("iris",))
    # at 80%: the DP curve reads 0.52 + (0.60 − 0.52)·20/25 = 0.584, the regularised one 0.58 + 0.12·5/20 = 0.61
    assert _judge(_leak(0.50), sec).startswith(V.SUPPORTED)
    assert _judge(_leak(0.66), sec).startswith(V.CONTRADICTED)
    assert _judge(_leak(0.59), sec).startswith("mixed") or _judge(_leak(0.59), sec).startswith("partly")
    assert _judge(_leak(0.50, defence_acc=99.0), sec).startswith("not tested")   # beyond every curve
