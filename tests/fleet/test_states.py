import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import IllegalTransition
from fleet.states import (
    HUMAN_STATES,
    TRANSITIONS,
    InstanceState,
    check_transition,
)
from shop import states as shop_states


def test_every_state_has_a_row_and_targets_are_states():
    assert set(TRANSITIONS) == set(InstanceState)
    for targets in TRANSITIONS.values():
        assert targets <= set(InstanceState)


def test_error_and_suspended_are_left_only_by_start_stop_or_suspend():
    for state in HUMAN_STATES:
        assert InstanceState.ONLINE not in TRANSITIONS[state]
        assert InstanceState.BACKOFF not in TRANSITIONS[state]


def test_suspended_cannot_go_online_without_starting():
    with pytest.raises(IllegalTransition):
        check_transition(InstanceState.SUSPENDED, InstanceState.ONLINE)
    assert check_transition(InstanceState.SUSPENDED, InstanceState.STARTING) == "starting"


@given(st.lists(st.sampled_from(list(InstanceState)), min_size=1, max_size=30))
def test_random_walks_accept_exactly_the_table(path):
    current = None
    for new in path:
        allowed = current is None or new in TRANSITIONS[current]
        if allowed:
            assert check_transition(current, new) == new
            current = new
        else:
            with pytest.raises(IllegalTransition):
                check_transition(current, new)


@pytest.mark.parametrize(
    "table,enum",
    [
        (shop_states.ORDER_TRANSITIONS, shop_states.OrderStatus),
        (shop_states.PAYMENT_TRANSITIONS, shop_states.PaymentStatus),
        (shop_states.WITHDRAWAL_TRANSITIONS, shop_states.WithdrawalStatus),
    ],
)
def test_commerce_tables_are_complete(table, enum):
    assert set(table) == set(enum)


def test_orders_move_only_forward():
    O = shop_states.OrderStatus  # noqa: N806, E741
    shop_states.check(shop_states.ORDER_TRANSITIONS, "order", O.PAID, O.WAITING_STOCK)
    for final in shop_states.FINAL_ORDER_STATES:
        for target in O:
            with pytest.raises(IllegalTransition):
                shop_states.check(shop_states.ORDER_TRANSITIONS, "order", final, target)
    with pytest.raises(IllegalTransition):
        shop_states.check(shop_states.ORDER_TRANSITIONS, "order", O.DELIVERED, O.PAID)
