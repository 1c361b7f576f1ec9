"""The lifecycle table (cases/lifecycle.py TRANSITIONS) pinned by hand: every status, the moves it
allows and what each must carry, written out here rather than read from the table, so that a change
to the table is a change to this file too (domain.md §4)."""

from __future__ import annotations

import pytest

from cases.lifecycle import CaseStatus, IllegalMove, MissingNeeds, Move, Rating, allowed_moves, check_move

# from → {to: what the move must carry}; a status with {} is finished.
PINNED: dict[str, dict[str, list[str]]] = {
    "reported": {"verified": [], "voided": ["reason"], "merged": ["into"]},
    "verified": {"filed": [], "voided": ["reason"], "merged": ["into"]},
    "filed": {"dispatched": [], "voided": ["reason"], "merged": ["into"]},
    "dispatched": {"accepted": [], "returned": ["reason"], "reassigned": ["reason", "unit"]},
    "reassigned": {"accepted": [], "returned": ["reason"], "reassigned": ["reason", "unit"]},
    "accepted": {
        "in_progress": [], "returned": ["reason"], "reassigned": ["reason", "unit"], "suspended": ["reason"],
    },
    "in_progress": {
        "handled": [], "extended": ["extend_by", "reason"], "suspended": ["reason"], "returned": ["reason"],
        "reassigned": ["reason", "unit"],
    },
    "extended": {"handled": [], "suspended": ["reason"]},
    "suspended": {"in_progress": []},
    "returned": {"dispatched": [], "reassigned": ["reason", "unit"], "voided": ["reason"]},
    "handled": {"checked": [], "in_progress": ["reason"]},  # a failed check sends it back to work
    "checked": {"closed": []},
    "closed": {"revisited": ["rating"]},
    "revisited": {},
    "voided": {},
    "merged": {},
}  # fmt: skip

# Everything a move may carry, to make each legal move complete.
FULL = {"reason": "因为", "unit": "330102001", "extend_by": "2d", "into": 7, "rating": Rating.SATISFIED}


def test_every_status_has_exactly_the_pinned_moves():
    assert sorted(s.value for s in CaseStatus) == sorted(PINNED)
    for status, moves in PINNED.items():
        assert allowed_moves(CaseStatus(status)) == moves, status


@pytest.mark.parametrize("current", list(PINNED))
def test_each_move_is_legal_exactly_when_pinned_and_needs_what_is_pinned(current):
    for to in PINNED:
        needs = PINNED[current].get(to)
        if needs is None:
            with pytest.raises(IllegalMove) as refused:
                check_move(CaseStatus(current), Move(CaseStatus(to), **FULL))
            assert refused.value.allowed == sorted(PINNED[current])
            continue
        check_move(CaseStatus(current), Move(CaseStatus(to), **{n: FULL[n] for n in needs}))
        for need in needs:  # without any one of its needs, the move is refused and says which
            partial = {n: FULL[n] for n in needs if n != need}
            with pytest.raises(MissingNeeds, match=need):
                check_move(CaseStatus(current), Move(CaseStatus(to), **partial))
