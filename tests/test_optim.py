"""Learning-rate schedules and optimizers by name."""

import numpy as np
import pytest
import torch

from facecls.training.optim import OPTIMIZERS, lr_multiplier, make_optimizer, set_learning_rates


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "constant"])
def test_lr_schedules_start_and_end_where_expected(schedule):
    values = [lr_multiplier(schedule, s, 100) for s in range(101)]
    assert max(values) == pytest.approx(1.0, abs=0.01)
    if schedule == "onecycle":
        assert values[0] < 0.1 and values[-1] < 0.01 and np.argmax(values) == 30
    elif schedule == "cosine":
        assert values[0] == 1.0 and values[-1] == pytest.approx(0.0, abs=1e-9)




@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_follows_the_schedule_from_its_groups_base_lr(name):
    weights = torch.nn.Parameter(torch.zeros(3))
    optimizer = make_optimizer(name, [{"params": [weights], "lr": 0.01}], weight_decay=0.0)
    set_learning_rates(optimizer, "onecycle", 0, 100)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 / 25)
    set_learning_rates(optimizer, "onecycle", 30, 100)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
