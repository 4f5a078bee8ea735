"""Explicit-state breadth-first search of the composed model, with the shortest counterexample.

Every reachable state is checked against the slot spec's invariants (exact interpreter) and the composed
invariants below, which compare the slot's book with venue truth. After the search, `no_stranded_exit` is
checked as a reachability property: from every reachable state, a flat state (no venue position, no live
order) must be reachable without further faults. Breadth-first order makes every counterexample a shortest
one. Rows never fired are reported as dead spec (within the bounds): the slot's, and with this engine those of
spec/venue.yaml, the venue environment's machine (the rows of the venue steps the model's venue actions took).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction

import attrs

from pink_codegen.exact import BoundError
from pink_codegen.verify.model import ComposedModel, State, VenueOrder, delivered_lots

# Composed invariants: name -> (catalogue, why). Checked on every reachable state.
COMPOSED = {
    "books_match_venue": ("fill_identity", "the slot's entry and exit lots equal what the venue executed for them"),
    "one_entry_exposure": ("no_double_entry", "never more than one live entry order, never more position than "
                                              "the current trade asked for"),
    "booked_at_venue_prices": ("true_fill_price", "the slot's entry and exit quotes equal the venue's fill quotes"),
    "closed_pnl_is_price_change": ("no_leverage_inflation", "a closed trade's realised PnL is the venue's quote "
                                                            "difference, whatever the leverage"),
    "fees_match_venue": ("single_book", "the trade's fees equal what the venue charged for its orders, once"),
    "record_before_next_trade": ("single_book", "no new trade starts before the last one's record is durable "
                                                "(D12)"),
    "cancel_in_flight": ("no_stranded_exit", "a slot waiting for a cancel confirmation has asked for the cancel "
                                             "(or the order is already done)"),
}

# Reachability properties, checked on the whole explored graph (fault-free paths only).
REACHABILITY = {
    "flat_reachable": ("no_stranded_exit", "from every state, flat (no position, no live order) is reachable"),
    "slot_free_reachable": ("no_stranded_exit", "from every state, a slot that accepts a new entry is reachable"),
}
FREE_STATES = frozenset({"IDLE", "ORDER_REJECTED", "TRADE_TERMINAL_WRITTEN"})


@attrs.frozen
class Violation:
    invariant: str
    catalogue: str
    detail: str
    trace: tuple[tuple[str, str, str], ...]  # (action, slot state after, outcome)


@attrs.frozen
class CheckResult:
    profile: str
    states: int
    transitions: int
    max_depth: int
    seconds: float
    complete: bool
    violations: tuple[Violation, ...]
    fired_rows: frozenset[int]
    dead_rows: tuple[int, ...]
    verdicts: dict[str, str]
    # spec/venue.yaml rows the venue environment fired and never fired (None, (): the engine does not track them;
    # the fast engine does not, its search is the same, so its venue rows are the reference engine's).
    venue_fired_rows: frozenset[int] | None = None
    venue_dead_rows: tuple[int, ...] = ()

    @property
    def states_per_s(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0

    @property
    def venue_coverage(self) -> str:
        """One line on the venue.yaml rows never fired ("" when not tracked or the search is incomplete)."""
        if self.venue_fired_rows is None or not self.complete:
            return ""
        dead = ", ".join(map(str, self.venue_dead_rows)) or "none"
        return f"venue.yaml rows never fired within these bounds: {dead}"


def _reported(m: ComposedModel, o: VenueOrder) -> tuple[int, Fraction]:
    """An order's cumulative lots and quote as the stream reported them: the most the slot can have booked (the
    venue's executed figures, unless a capability lets a report lag)."""
    if not m.bounds.lagging:
        return o.filled_lots, o.quote
    lots = delivered_lots(o)
    return lots, m.quote(o.role, lots)


def composed_violations(m: ComposedModel, s: State) -> list[tuple[str, str]]:
    """(invariant, detail) for each composed invariant that fails in s. The slot's book is compared with what the
    venue reported to it; exposure is compared with what the venue executed."""
    out: list[tuple[str, str]] = []
    var = m.var
    trade = var(s, "trade_seq")
    entry = next((o for o in s.orders if o.ref == var(s, "entry_order")), None)
    exits = [_reported(m, o) for o in s.orders if o.role == "EXIT" and o.trade == trade]
    exited = sum(lots for lots, _ in exits)
    entry_filled, entry_quote = _reported(m, entry) if entry is not None else (0, Fraction(0))
    if var(s, "entry_filled_lots") != entry_filled or var(s, "exited_lots") != exited:
        out.append(("books_match_venue", f"slot entry {var(s, 'entry_filled_lots')}/exited {var(s, 'exited_lots')} "
                                         f"lots, venue reported {entry_filled}/{exited}"))
    live_entries = [o for o in s.orders if o.role == "ENTRY" and o.live]
    target = var(s, "entry_target_lots")
    assert isinstance(target, int)
    if len(live_entries) > 1 or abs(s.position_lots) > target:
        out.append(("one_entry_exposure", f"{len(live_entries)} live entry orders, venue position "
                                          f"{s.position_lots} lots for a trade of {target}"))
    exit_quote = sum((quote for _, quote in exits), Fraction(0))
    if var(s, "entry_cost_usdt") != entry_quote or var(s, "exit_cost_usdt") != exit_quote:
        out.append(("booked_at_venue_prices", f"slot quotes entry {var(s, 'entry_cost_usdt')} exit "
                                              f"{var(s, 'exit_cost_usdt')}, venue {entry_quote} / {exit_quote}"))
    venue_fees = (entry_quote + exit_quote) * m.bounds.fee_rate
    if var(s, "fees_usdt") != venue_fees:
        out.append(("fees_match_venue", f"slot fees {var(s, 'fees_usdt')}, venue charged {venue_fees}"))
    if s.record_pending and s.record_pending != trade:
        out.append(("record_before_next_trade", f"trade {trade} started while the record of trade "
                                                f"{s.record_pending} is not durable"))
    waiting = {"EXIT_REQUESTED": "entry_order", "ENTRY_CANCELLING": "entry_order", "EXIT_CANCELLING": "exit_order"}
    if s.slot_state in waiting:
        ref = var(s, waiting[s.slot_state])
        order = next((o for o in s.orders if o.ref == ref), None)
        if order is not None and order.live and not order.cancel_requested:
            out.append(("cancel_in_flight", f"{s.slot_state} waits for a cancel of #{ref} that was never sent"))
    if s.slot_state in ("CLOSED", "TRADE_TERMINAL_WRITTEN") and var(s, "entry_filled_lots") == exited:
        expected = entry_quote - exit_quote  # the model's trades are SHORT
        if var(s, "realised_pnl_usdt") != expected:
            out.append(("closed_pnl_is_price_change", f"realised {var(s, 'realised_pnl_usdt')}, venue quotes give "
                                                      f"{expected}"))
    return out


def _flat(s: State) -> bool:
    return s.position_lots == 0 and not any(o.live for o in s.orders)


# A composition other than slot x venue (verify/routed.py) brings its own composed invariants and reachability
# goals as attributes of its model; these read them, with the slot x venue ones as the default.
Goal = tuple[str, Callable[[State], bool], str]  # (property, a good state, what it is, for the message)


def composed_catalogue(m: ComposedModel) -> dict[str, tuple[str, str]]:
    """Composed invariant -> (catalogue, why) of the model's composition."""
    own: dict[str, tuple[str, str]] | None = getattr(m, "composed_invariants", None)
    return COMPOSED if own is None else own


def composed_check(m: ComposedModel) -> Callable[[State], list[tuple[str, str]]]:
    """The function giving (invariant, detail) for each composed invariant that fails in a state."""
    own: Callable[[State], list[tuple[str, str]]] | None = getattr(m, "composed_violations", None)
    return own if own is not None else (lambda s: composed_violations(m, s))


def reachability_catalogue(m: ComposedModel) -> dict[str, tuple[str, str]]:
    own: dict[str, tuple[str, str]] | None = getattr(m, "reachability", None)
    return REACHABILITY if own is None else own


def reachability_goals(m: ComposedModel) -> list[Goal]:
    own: list[Goal] | None = getattr(m, "reachability_goals", None)
    return own if own is not None else [("flat_reachable", _flat, "flat"),
                                        ("slot_free_reachable", lambda s: s.slot_state in FREE_STATES, "a free slot")]


def check(m: ComposedModel, max_states: int = 2_000_000,
          progress: Callable[[int, int, int], None] | None = None) -> CheckResult:
    """Breadth-first search; stops at the first violation (its trace is a shortest one) or when done."""
    started = time.perf_counter()
    init = m.initial()
    index: dict[State, int] = {init: 0}
    states: list[State] = [init]
    parent: list[tuple[int, str, str]] = [(-1, "", "")]  # (parent id, action label, outcome)
    depth = [0]
    good_edges: list[list[int]] = [[]]  # non-fault successors, for the reachability of flat states
    fired: set[int] = set()
    transitions = 0
    queue = deque([0])
    violations: list[Violation] = []
    slot_invariants = {inv.name: inv.catalogue for inv in m.ir.invariants}
    catalogue = composed_catalogue(m)
    composed = composed_check(m)
    m.venue.fired.clear()  # the venue.yaml rows of this search's venue steps (ComposedModel.apply records them)

    def trace(i: int, last: tuple[str, str, str] | None = None) -> tuple[tuple[str, str, str], ...]:
        steps: list[tuple[str, str, str]] = []
        while i > 0:
            p, label, outcome = parent[i]
            steps.append((label, states[i].slot_state, outcome))
            i = p
        steps.reverse()
        if last is not None:
            steps.append(last)
        return tuple(steps)

    def fail(name: str, catalogue: str, detail: str, i: int, last: tuple[str, str, str] | None = None) -> None:
        violations.append(Violation(name, catalogue, detail, trace(i, last)))

    while queue and not violations:
        i = queue.popleft()
        s = states[i]
        vars_ = m.vars(s)
        for name in m.exact.violated(s.slot_state, vars_):
            fail(name, slot_invariants[name], "spec invariant", i)
        for name, detail in composed(s):
            fail(name, catalogue[name][0], detail, i)
        if violations:
            break
        for action in m.actions(s):
            try:
                nxt, outcome, row = m.apply(s, action, vars_)
            except BoundError as exc:
                fail("bounds", "single_book", str(exc), i, (action.label, "", "BOUND"))
                break
            if outcome == "UNHANDLED" and action.label.startswith("venue"):
                fail("venue_event_handled", "no_stranded_exit", f"{action.event} not handled in {s.slot_state}",
                     i, (action.label, s.slot_state, "UNHANDLED"))
                break
            if outcome.startswith("UNHANDLED "):  # a machine of the composition could not take what it was sent
                fail("venue_event_handled", "no_stranded_exit", outcome.removeprefix("UNHANDLED "), i,
                     (action.label, s.slot_state, "UNHANDLED"))
                break
            if outcome == "UNHANDLED":
                continue
            transitions += 1
            if row >= 0:
                fired.add(row)
            j = index.get(nxt)
            if j is None:
                j = len(states)
                if j >= max_states:
                    break
                index[nxt] = j
                states.append(nxt)
                parent.append((i, action.label, outcome))
                depth.append(depth[i] + 1)
                good_edges.append([])
                queue.append(j)
            if not action.fault:
                good_edges[i].append(j)
        if progress is not None and len(states) % 5000 == 0:
            progress(len(states), transitions, depth[-1])
    complete = not queue and not violations and len(states) < max_states
    verdicts = {name: "holds" for name in [*slot_invariants, *catalogue]}
    if complete:
        for name, good, what in reachability_goals(m):
            stuck = _unable_to_reach(states, good_edges, good)
            if stuck is not None:
                fail(name, reachability_catalogue(m)[name][0], f"no way to {what} from {states[stuck].slot_state} "
                                                               f"(venue position {states[stuck].position_lots})", stuck)
                break
    fired |= getattr(m, "fired_slot_rows", set())  # a composition that steps the slot more than once per action
    return result_of(m, len(states), transitions, max(depth), started, complete, violations, fired, verdicts,
                     venue_fired=frozenset(m.venue.fired))


def result_of(m: ComposedModel, states: int, transitions: int, max_depth: int, started: float, complete: bool,
              violations: list[Violation], fired: set[int], verdicts: dict[str, str],
              venue_fired: frozenset[int] | None = None) -> CheckResult:
    """A finished search as a CheckResult (both engines end here): the violated properties, the reachability
    verdicts (checked only on a complete search without violations) and the rows never fired (venue.yaml's
    too when the engine tracked them: `venue_fired`)."""
    for v in violations:
        verdicts[v.invariant] = "VIOLATED"
    for name in reachability_catalogue(m):
        verdicts.setdefault(name, "holds" if complete and not violations else "not checked")
    seconds = time.perf_counter() - started
    dead = tuple(t.index for t in m.ir.transitions if t.index not in fired) if complete else ()
    venue_dead = tuple(t.index for t in m.venue.ir.transitions if t.index not in venue_fired) \
        if complete and venue_fired is not None else ()
    return CheckResult(m.bounds.name, states, transitions, max_depth, seconds, complete, tuple(violations),
                       frozenset(fired), dead, verdicts, venue_fired, venue_dead)


def _unable_to_reach(states: list[State], edges: list[list[int]], good_state: Callable[[State], bool]) -> int | None:
    """The first state (in BFS order, so the shortest trace) from which no good state is reachable."""
    reverse: list[list[int]] = [[] for _ in states]
    for i, succ in enumerate(edges):
        for j in succ:
            reverse[j].append(i)
    good = [False] * len(states)
    queue = deque(i for i, s in enumerate(states) if good_state(s))
    for i in queue:
        good[i] = True
    while queue:
        j = queue.popleft()
        for i in reverse[j]:
            if not good[i]:
                good[i] = True
                queue.append(i)
    return next((i for i, ok in enumerate(good) if not ok), None)


# ------------------------------------------------------------------ replaying a counterexample


class ReplayError(ValueError):
    """A trace step names no action available in the state reached so far."""


def replay(m: ComposedModel, labels: list[str]) -> tuple[State, list[str]]:
    """Follow a counterexample's actions by label. Returns the last state and the properties that fail there
    (spec and composed invariants, and `flat_reachable` when no fault-free path leads back to flat)."""
    s = m.initial()
    for n, label in enumerate(labels, start=1):
        action = next((a for a in m.actions(s) if a.label == label), None)
        if action is None:
            raise ReplayError(f"step {n}: no action {label!r} in state {s.slot_state}")
        try:
            s, _, _ = m.apply(s, action)
        except BoundError as exc:
            return s, [f"bounds: {exc}"]
    failing = list(m.exact.violated(s.slot_state, m.vars(s)))
    failing += [name for name, _ in composed_check(m)(s)]
    if not _flat_reachable_from(m, s):
        failing.append("flat_reachable")
    return s, failing


def _flat_reachable_from(m: ComposedModel, start: State, limit: int = 200_000) -> bool:
    seen = {start}
    queue = deque([start])
    while queue and len(seen) < limit:
        s = queue.popleft()
        if _flat(s):
            return True
        for action in m.actions(s):
            if action.fault:
                continue
            try:
                nxt, outcome, _ = m.apply(s, action)
            except BoundError:
                continue
            if outcome != "UNHANDLED" and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return False
