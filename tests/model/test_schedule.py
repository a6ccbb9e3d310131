"""The schedule owns sub-steps and states: flat <-> (act, update), what each sub-step writes."""

import numpy as np
import pytest

from airinterp.model.hooks import Address
from airinterp.model.schedule import (
    SubStep,
    act_schedule,
    check_state,
    stage_of,
    substep_names,
    writes,
    written,
)
from tests.helpers import make_config


def test_substeps_round_trip_and_agree_with_addresses():
    sched = act_schedule(2, 2)
    cfg = make_config()
    for k in range(30):
        s = SubStep.at(sched, k)
        assert s.flat == k and SubStep.of(sched, s.act, s.update.name) == s
        assert Address.parse(f"{s.name}.hook_out").substep(cfg) == k
        assert Address.at(cfg, k, "hook_out") == Address.parse(f"{s.name}.hook_out")
    assert substep_names(sched, 7) == ["act.0.L0_0", "act.0.L0_1", "act.0.H0", "act.0.L1_0", "act.0.L1_1", "act.0.H1", "act.1.L0_0"]


def test_written_and_states():
    sched = act_schedule(2, 2)
    assert written(sched, "zH", 12).tolist() == [False, False, True, False, False, True] * 2
    assert (written(sched, "zL", 12) == ~written(sched, "z_H", 12)).all() and isinstance(written(sched, "zL", 1), np.ndarray)
    assert writes(sched, "zH") == [2, 5] and stage_of("z_L") == "L" and check_state("z_H") == "zH"
    with pytest.raises(ValueError, match="unknown state 'zX'; choose zH or zL"):
        check_state("zX")
    with pytest.raises(ValueError, match="update 'L3_0' is not in this model's schedule"):
        SubStep.of(sched, 0, "L3_0")
    with pytest.raises(ValueError, match="substep -1"):
        SubStep.at(sched, -1)
