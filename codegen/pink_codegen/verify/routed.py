"""The slot x router x venue composition: every order the slot places is worked by a router machine (the exact
interpreter of spec/router.yaml), and the venue sees the router's attempts, not the slot's orders.

This is the runtime's execution router (pink_fsm/runtime/exec_router.py) as a model, glue for glue:

* slot PLACE_ORDER -> a working order with its own router machine and a PLAN (the profile's execution plan);
  router SEND_MARKET / SEND_POST_ONLY -> a new venue attempt (ref = working ref x 10 + attempt number);
* slot CANCEL_ORDER -> router WITHDRAW; router CANCEL_WORKING -> a cancel request for the current attempt;
  router PROBE_VENUE -> the runtime's requote gate becomes an action (GATE with venue truth);
* an attempt's venue reports -> router events when it is the working order's current attempt, and -> slot
  events for the working order: the first ack, and every fill as the working order's cumulative (the sum over
  its attempts, D14); a router final state other than FILLED ends the working order for the slot (REJECT when
  the venue never acked or filled any attempt of it, CANCELLED otherwise), exactly as the runtime does;
* the clock: a maker quote's TTL expiry is an action (router TICK at its deadline); an urgent exit pre-empts a
  resting maker exit (router URGENT_EXIT).

The runtime around it is modelled too: a crash at any moment and the recovery of pink_fsm/runtime/recovery.py
(open orders first, then positions; adopt or restore flat; reconcile after a late fill of an earlier session's
order), the kernel's capital against what our fills did to the venue wallet (re-anchored by recovery, D5), and
margin-only account frames (wallet 0, ignored: D6).

One action runs to completion: the venue's report, the router's steps and the slot's steps it causes, and
whatever they emit, in the order the runtime applies them. Every router machine's spec invariants and the
composed invariants below are checked in every reachable state, by the same checker as the slot x venue model
(checker.check). The fast engine and the Promela export do not encode this model; `--engine auto` runs the
reference engine for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from fractions import Fraction

import attrs

from pink_codegen.exact import ExactMachine, Vars
from pink_codegen.ir import Machine
from pink_codegen.types import ExactValue
from pink_codegen.verify.checker import COMPOSED, FREE_STATES, REACHABILITY, Goal, _flat
from pink_codegen.verify.model import FOREIGN_ORDER, Action, Bounds, ComposedModel, State, VenueOrder

ATTEMPTS_PER_ORDER = 10  # attempt refs are working ref x 10 + n; the router spec bounds attempts below 10
HOT_AGE_MS = 0
COLD_AGE_MS = 60_000  # an own fill older than the router's hot window (5 s)
MAKER_STATES = frozenset({"MAKER_SENT", "MAKER_RESTING"})
# Slot states with no order of ours live, where the runtime may reconcile with the venue (engine.QUIET_STATES).
QUIET_STATES = frozenset({"IDLE", "ORDER_REJECTED", "TRADE_TERMINAL_WRITTEN", "POSITION_OPEN", "PARTIALLY_CLOSED",
                          "EXIT_REJECTED"})


@attrs.frozen
class ExecPlan:
    """How the runtime works orders (pink_fsm.runtime.exec_router.ExecConfig): the PLAN each router gets."""

    entry_style: str = "MAKER"
    exit_style: str = "MAKER"
    entry_miss_policy: str = "RETRY"
    entry_retries: int = 1
    entry_ttl_ms: int = 20_000
    exit_ttl_ms: int = 15_000


@attrs.frozen
class RoutedProfile:
    bounds: Bounds
    plan: ExecPlan
    exit_sizes: tuple[int, ...] = (0, 1)  # the policy's EXIT sizes (0 = the active leg)
    crash_budget: int = 0  # runtime crashes (each followed by the recovery of pink_fsm/runtime/recovery.py)
    # Model mutants, not profiles to ship: recovery reads positions before open orders (D9), or does not
    # re-anchor capital to the wallet (D5) (see RoutedModel._restart).
    positions_first: bool = False
    reanchor: bool = True
    # Account frames with no wallet balance (margin-only frames, wallet 0): the kernel ignores them (D6); the
    # model mutant `accept_wallet_zero` re-anchors capital to them when flat, as the original PINK runtime did.
    wallet_zero_budget: int = 0
    accept_wallet_zero: bool = False


def routed_bounds(name: str, max_lots: int = 2, cancel_budget: int = 0, reject_budget: int = 0,
                  duplicate_budget: int = 0, foreign_budget: int = 0, venue_cancel_budget: int = 0,
                  reorder_after_cancel_budget: int = 0, lagging_stream_budget: int = 0) -> Bounds:
    """One trade, no fault unless named: each routed profile explores one class of venue behaviour around the
    router (all of them at once multiplies past a million states: the reference engine checks this model)."""
    return Bounds(name, max_lots=max_lots, cancel_budget=cancel_budget, reject_budget=reject_budget,
                  duplicate_budget=duplicate_budget, foreign_budget=foreign_budget,
                  venue_cancel_budget=venue_cancel_budget, reorder_after_cancel_budget=reorder_after_cancel_budget,
                  lagging_stream_budget=lagging_stream_budget)


# The runtime's execution defaults (ExecPlan(): maker entry with one gated re-quote, maker exit escalating to
# MARKET), one profile per class of venue behaviour, plus the MARKET miss policy and taker orders throughout.
ROUTED_PROFILES = {
    # 1 lot, no fault but a margin-only account frame (wallet 0, D6)
    "router-smoke": RoutedProfile(routed_bounds("router-smoke", max_lots=1), ExecPlan(), wallet_zero_budget=1),
    # venue-side cancels (expiry) and refusals of placements, racing the TTL sweep and urgent exits
    "router": RoutedProfile(routed_bounds("router", venue_cancel_budget=1, reject_budget=1), ExecPlan()),
    # a policy cancel (of the entry, or of the exit) racing fills, TTLs and re-quotes
    "router-cancel": RoutedProfile(routed_bounds("router-cancel", cancel_budget=1), ExecPlan()),
    # lagging reports: an attempt's fill reported after its cancel confirmation (the premise of the requote gate,
    # D8) and a lagging stream whose REST position probe lags too
    "router-lag": RoutedProfile(routed_bounds("router-lag", reorder_after_cancel_budget=1, lagging_stream_budget=1),
                                ExecPlan()),
    "router-market": RoutedProfile(routed_bounds("router-market", venue_cancel_budget=1),
                                   ExecPlan(entry_miss_policy="MARKET")),
    # a runtime crash at any moment, then recovery (open orders, then positions; adopt or restore flat) and the
    # reconcile after an earlier session's order fills (recovery.py, persistence.reconcile)
    "router-crash": RoutedProfile(routed_bounds("router-crash"), ExecPlan(), crash_budget=1),
    "router-taker": RoutedProfile(routed_bounds("router-taker", reject_budget=1, venue_cancel_budget=1,
                                                duplicate_budget=1, foreign_budget=1),
                                  ExecPlan(entry_style="TAKER", exit_style="TAKER")),
}


@attrs.frozen(cache_hash=True)
class Working:
    """One working order of the slot and its router machine."""

    ref: int
    role: str
    trade: int
    router_state: str
    router_vars: tuple[ExactValue, ...]
    attempts: tuple[int, ...] = ()  # venue refs of its attempts, oldest first
    acked: bool = False  # the slot has been told of an ack (once per working order)
    ended: bool = False  # a router final state ended it for the slot

    @property
    def current(self) -> int:
        return self.attempts[-1] if self.attempts else 0


@attrs.frozen(cache_hash=True)
class RoutedState(State):
    working: tuple[Working, ...] = ()
    crashes_left: int = 0
    recovery: int = 0  # 1: a restarted runtime read one of the venue's books, the other read is next
    earlier: tuple[int, ...] = ()  # venue refs of attempts of earlier sessions (no router works them any more)
    adopted_lots: int = 0  # the current trade was adopted from the venue's position with these lots (0: not)
    reconcile_due: bool = False  # an earlier-session order filled after recovery: reconcile before trading on
    # The kernel's capital is anchor + the current trade's net (realised PnL - fees); the anchor takes each
    # finished trade's net when the next starts (Kernel.fold_trade) and is re-anchored to the wallet by recovery.
    anchor_usdt: int | Fraction = 0
    wallet_zero_left: int = 0


def reported_cum(o: VenueOrder) -> int:
    """The furthest cumulative report of an attempt (the runtime keeps the furthest; a repeat changes nothing)."""
    return max(o.sent_cums, default=0)


class RoutedModel(ComposedModel):
    def __init__(self, slot: Machine, router: Machine, profile: RoutedProfile, venue: Machine | None = None) -> None:
        super().__init__(slot, profile.bounds, venue)
        self.router_ir = router
        self.router = ExactMachine(router)
        self.profile = profile
        self.plan = profile.plan
        self.exit_sizes = profile.exit_sizes
        self.router_var_names = tuple(v.name for v in router.variables)
        self._router_index = {name: i for i, name in enumerate(self.router_var_names)}
        self.fired_router_rows: set[int] = set()
        self.fired_slot_rows: set[int] = set()
        # When a list: every call across the router boundary is appended to it (tests compare the glue with the
        # runtime's exec_router.py): ("place", ref, role, lots), ("withdraw"|"urgent_exit"|"tick", ref),
        # ("gate", ref, venue_lots, fill_age_ms, slot_lots), ("report", event, attempt, cum | post_only | None) in;
        # ("send", attempt, market, lots), ("cancel", attempt), ("slot", event, ref, cum | None) out.
        self.glue_log: list[tuple[object, ...]] | None = None
        # What checker.check reads of a composition (see checker.composed_catalogue and reachability_goals).
        self.composed_invariants = {**COMPOSED, **ROUTED_COMPOSED,
                                    **{f"router.{inv.name}": (inv.catalogue, inv.doc) for inv in router.invariants}}
        self.reachability = {**REACHABILITY, **ROUTED_REACHABILITY}
        self.reachability_goals: list[Goal] = [
            ("flat_reachable", _flat, "flat"),
            ("slot_free_reachable", lambda s: s.slot_state in FREE_STATES, "a free slot"),
            ("working_orders_end", lambda s: all(w.ended for w in getattr(s, "working", ())),
             "every working order ended"),
        ]

    def composed_violations(self, s: State) -> list[tuple[str, str]]:
        return routed_violations(self, s)

    # ------------------------------------------------------------------ states

    def initial(self) -> RoutedState:
        base = super().initial()
        return RoutedState(**attrs.asdict(base, recurse=False), crashes_left=self.profile.crash_budget,
                           wallet_zero_left=self.profile.wallet_zero_budget)

    def router_vars(self, w: Working) -> Vars:
        return dict(zip(self.router_var_names, w.router_vars, strict=True))

    def router_var(self, w: Working, name: str) -> ExactValue:
        return w.router_vars[self._router_index[name]]

    def canonical_router_vars(self, state: str, vars_: Vars) -> tuple[ExactValue, ...]:
        """A router's variables up to what no future step can tell apart, so equal situations are one state:
        * times are relative to the router's own clock (now_ms = 0): its guards and effects only compare and add
          its own now, deadline and clock readings, and the model's clock jumps to a deadline when one expires;
        * a router in a final state is never stepped again: only what its invariants read is kept (role,
          target and filled lots), the rest returns to its initial value."""
        values = dict(vars_)
        if state in FINAL_STATES:
            initial = self.router.initial()[1]
            values = {name: value if name in ("role", "target_lots", "filled_lots") else initial[name]
                      for name, value in values.items()}
        else:
            now, deadline = values["now_ms"], values["deadline_ms"]
            assert isinstance(now, int) and isinstance(deadline, int)
            values["now_ms"], values["deadline_ms"] = 0, max(deadline - now, 0)
        return tuple(v.numerator if isinstance(v, Fraction) and v.denominator == 1 else v
                     for v in (values[n] for n in self.router_var_names))

    @staticmethod
    def working_of(s: RoutedState, ref: ExactValue) -> Working | None:
        return next((w for w in s.working if w.ref == ref), None)

    @staticmethod
    def attempts_of(s: State, w: Working) -> list[VenueOrder]:
        return [o for o in s.orders if o.ref in w.attempts]

    # ------------------------------------------------------------------ actions

    def actions(self, s: State) -> Iterator[Action]:
        assert isinstance(s, RoutedState)
        if s.recovery:  # a restarted runtime reads the venue; it does not trade until both books are read
            second = "open orders" if self.profile.positions_first else "positions"
            yield Action(f"recovery reads {second}", "RECOVER", ())
            yield from self._reduce_only(s, self._venue_actions(s))
            if s.recent_fill:
                yield Action("clock: the hot window passes", "", ())
            return
        if s.wallet_zero_left > 0:
            yield Action("venue account frame with wallet 0 (margin only)", "WALLET_ZERO", (), fault=True)
        if s.crashes_left > 0:
            first = "positions" if self.profile.positions_first else "open orders"
            yield Action(f"runtime crashes; on restart recovery reads {first}", "CRASH", (), fault=True)
        if s.reconcile_due and s.slot_state in QUIET_STATES and all(w.ended for w in s.working):
            yield Action("runtime reconciles with the venue (an earlier-session order filled)", "RECONCILE", ())
        for a in self._policy_actions(s):
            # The base offers cancels by venue order; here they name working orders. No entry while a reconcile
            # is due (the runtime stops entries until it has reconciled), and no exit either: the runtime requests
            # the reconcile at the first quiet moment, an exit re-issue only 5 s later (engine.exit_retry_ms).
            if a.event == "CANCEL" or (a.event in ("ENTER", "EXIT") and s.reconcile_due):
                continue
            if a.event != "EXIT" or dict(a.params)["qty_lots"] in self.exit_sizes:
                yield a
        for role, name in (("ENTRY", "entry_order"), ("EXIT", "exit_order")):
            w = self.working_of(s, self.var(s, name))
            if s.cancels_left > 0 and w is not None and not w.ended:
                yield Action(f"policy CANCEL {role} #{w.ref}", "CANCEL", (("order", w.ref),))
        for w in s.working:
            if w.ended:
                continue
            if w.router_state in MAKER_STATES:
                yield Action(f"clock: the quote of #{w.ref} expires (TTL)", "TICK", (("order", w.ref),))
                if w.role == "EXIT":
                    yield Action(f"policy URGENT_EXIT #{w.ref}", "URGENT_EXIT", (("order", w.ref),))
            if w.router_state == "MISS":
                yield from self._gate_actions(s, w)
        yield from self._reduce_only(s, self._venue_actions(s))
        for o in s.orders:
            if o.live and not o.acked and o.filled_lots == 0 and self._maker_attempt(s, o):
                # The market moved through the quote: a post-only order that would take is refused (not a fault).
                yield Action(f"venue REJECT #{o.ref} (post-only would take)", "REJECT",
                             (("order", o.ref), ("post_only_would_take", True)))

    @staticmethod
    def _reduce_only(s: RoutedState, actions: Iterator[Action]) -> Iterator[Action]:
        """Exit orders are reduce-only (BingX): the venue never fills one beyond the position it holds. Binds when
        two exit orders are live at once: an earlier session's, racing recovery's cancel, and the new one."""
        for a in actions:
            params = dict(a.params)
            if "cum_lots" in params and a.label.startswith("venue FILL"):
                o = next((o for o in s.orders if o.ref == params["order"]), None)
                cum = params["cum_lots"]
                assert isinstance(cum, int)
                if o is not None and o.role == "EXIT" and cum - o.filled_lots > abs(s.position_lots):
                    continue
            yield a

    def _maker_attempt(self, s: RoutedState, o: VenueOrder) -> bool:
        w = self.working_of(s, o.ref // ATTEMPTS_PER_ORDER)
        return w is not None and not w.ended and w.current == o.ref and w.router_state == "MAKER_SENT"

    def _gate_actions(self, s: RoutedState, w: Working) -> Iterator[Action]:
        venue_lots = abs(s.position_lots)
        stale_lots = abs(s.position_lots - self._unreported_lots(s)) if self.bounds.lagging_stream_budget \
            else venue_lots
        params: tuple[tuple[str, ExactValue], ...] = (
            ("order", w.ref), ("probe_ok", True), ("venue_position_lots", venue_lots),
            ("own_fill_age_ms", HOT_AGE_MS if s.recent_fill else COLD_AGE_MS),
            ("slot_open_lots", self._open_lots(s)))
        yield Action(f"runtime: requote gate for #{w.ref} (venue position {venue_lots})", "GATE", params)
        if s.recent_fill and stale_lots != venue_lots:
            yield Action(f"runtime: requote gate for #{w.ref} (REST probe lags: position {stale_lots})", "GATE",
                         (*params[:2], ("venue_position_lots", stale_lots), *params[3:]), fault=True)

    # ------------------------------------------------------------------ applying an action

    def apply(self, s: State, a: Action, vars_: Vars | None = None) -> tuple[State, str, int]:
        assert isinstance(s, RoutedState)
        run = _Run(self, s)
        params = dict(a.params)
        if not a.event:
            if not a.params:
                return attrs.evolve(s, recent_fill=False), "", -1
            return self._venue_after(s, a, params), "", -1  # executed, its report lags
        if a.event in ("CRASH", "RECOVER", "RECONCILE"):
            return self._restart(s, a.event), "", -1
        if a.event == "WALLET_ZERO":  # AccountProjection.reconcile: no balance, capital untouched (D6)
            s = attrs.evolve(s, wallet_zero_left=s.wallet_zero_left - 1)
            if self.profile.accept_wallet_zero and s.slot_state in FREE_STATES:  # the mutant: re-anchor when flat
                s = attrs.evolve(s, anchor_usdt=_whole(0 - self.net_usdt(s)))
            return s, "", -1
        if a.event in ("TICK", "URGENT_EXIT", "GATE"):
            w = self.working_of(s, params.pop("order"))
            assert w is not None
            if a.event == "TICK":  # time passes up to the quote's deadline (relative to the router's now)
                params = {"clock_ms": self.router_var(w, "deadline_ms")}
            gate = ("venue_position_lots", "own_fill_age_ms", "slot_open_lots")
            run.log(a.event.lower(), w.ref, *[params[k] for k in gate if k in params])
            run.router_event(w.ref, a.event, params)
        elif a.event in ("ENTER", "EXIT", "CANCEL", "TRADE_WRITTEN"):
            run.slot_event(a.event, params, from_policy=True)
            if run.unhandled:  # the policy's own event: not applicable here (the base model skips it too)
                return s, "UNHANDLED", -1
            done = run.s
            if a.event in ("ENTER", "EXIT") and run.outcome == "OK":
                done = attrs.evolve(done, next_ref=done.next_ref + 1)
            if a.event == "CANCEL":
                done = attrs.evolve(done, cancels_left=done.cancels_left - 1)
            if a.event == "ENTER" and run.outcome == "OK":  # the finished trade's net is folded into capital
                done = attrs.evolve(done, trades=done.trades + 1, anchor_usdt=_whole(s.anchor_usdt + self.net_usdt(s)))
            if a.event == "TRADE_WRITTEN":
                done = attrs.evolve(done, record_pending=0)
            run.s = done
        else:
            self._venue_report(run, a, params)
        run.drain()
        if run.unhandled:
            return run.s, f"UNHANDLED {run.unhandled}", -1
        return self._settled(run.s), run.outcome, run.row

    @staticmethod
    def _settled(s: RoutedState) -> RoutedState:
        """Forget what no future step reads, so histories that differ only there are one state: how an
        attempt that is over at the venue ended (acked, cancel requested), and, once no repeat can follow (the
        duplicate budget is spent), every report of an attempt but its furthest."""
        forget_reports = s.duplicates_left == 0  # only a repeat reads a report before the furthest one

        def settled(o: VenueOrder) -> VenueOrder:
            if forget_reports and len(o.sent_cums) > 1:
                o = attrs.evolve(o, sent_cums=(o.sent_cums[-1],))
            if not o.live and not (o.acked and not o.cancel_requested):
                o = attrs.evolve(o, acked=True, cancel_requested=False)
            return o

        orders = tuple(settled(o) for o in s.orders)
        return s if orders == s.orders else attrs.evolve(s, orders=orders)

    def _venue_report(self, run: _Run, a: Action, params: dict[str, ExactValue]) -> None:
        """A venue report about an attempt: the venue's own change, then the router and the slot hear of it."""
        if params.get("order") == FOREIGN_ORDER:
            after = self._venue_after(run.s, a, params)
            assert isinstance(after, RoutedState)
            run.s = after
            run.slot_event("FILL", params)
            return
        if params.get("order") in run.s.earlier:
            self._earlier_report(run, a, params)
        else:
            self._attempt_report(run, a, params)
        if run.s.position_lots == 0 and "cum_lots" in params:
            self._reduce_only_cancels(run)

    def _reduce_only_cancels(self, run: _Run) -> None:
        """The position is closed: the venue cancels what is left of every live exit order (reduce-only), and
        the stream reports each cancel after the fill that closed the position."""
        for o in run.s.orders:
            if o.role == "EXIT" and o.live:
                run.s = attrs.evolve(run.s, orders=tuple(attrs.evolve(x, live=False) if x.ref == o.ref else x
                                                         for x in run.s.orders))
                w = self.working_of(run.s, o.ref // ATTEMPTS_PER_ORDER)
                if o.ref not in run.s.earlier:
                    run.log("report", "CANCELLED", o.ref, None)
                if o.ref not in run.s.earlier and w is not None and w.current == o.ref and not w.ended:
                    run.router_event(w.ref, "CANCELLED", {})

    def _attempt_report(self, run: _Run, a: Action, params: dict[str, ExactValue]) -> None:
        """A report about an attempt of this session's working order."""
        ref = params["order"]
        assert isinstance(ref, int)
        if params.get("post_only_would_take"):  # the attempt never existed at the venue; no fault budget spent
            run.s = attrs.evolve(run.s, orders=tuple(attrs.evolve(o, live=False) if o.ref == ref else o
                                                     for o in run.s.orders))
        else:
            after = self._venue_after(run.s, a, params)
            assert isinstance(after, RoutedState)
            run.s = after
        o = next(o for o in run.s.orders if o.ref == ref)
        run.log("report", a.event, ref, bool(params.get("post_only_would_take")) if a.event == "REJECT"
                else reported_cum(o) if a.event == "FILL" else None)
        w = self.working_of(run.s, ref // ATTEMPTS_PER_ORDER)
        assert w is not None, f"venue report for attempt #{ref} of no working order"
        current = w.current == ref and not w.ended
        if a.event == "FILL":
            attempts = self.attempts_of(run.s, w)
            cum = sum(reported_cum(o) for o in attempts)
            quote = sum((self.quote(o.role, reported_cum(o)) for o in attempts), Fraction(0))
            run.slot_event("FILL", {"order": w.ref, "cum_lots": cum, "cum_quote_usdt": quote,
                                    "cum_fee_usdt": quote * self.bounds.fee_rate})
            if current:
                o = next(o for o in attempts if o.ref == ref)
                run.router_event(w.ref, "FILL", {"cum_lots": reported_cum(o)})
        elif a.event == "ACK":
            if not w.acked:
                run.update(attrs.evolve(w, acked=True))
                run.slot_event("ACK", {"order": w.ref})
            if current:
                run.router_event(w.ref, "ACK", {})
        elif a.event == "CANCELLED" and current:
            run.router_event(w.ref, "CANCELLED", {})
        elif a.event == "REJECT" and current:
            run.router_event(w.ref, "REJECT", {"post_only_would_take": bool(params.get("post_only_would_take"))})

    # ------------------------------------------------------------------ crash and recovery

    def _earlier_report(self, run: _Run, a: Action, params: dict[str, ExactValue]) -> None:
        """A report of an attempt of an earlier session. No router works it; the slot hears of its fill by the
        attempt's own id, which it does not know (FOREIGN_ORDER: never booked, D7), and the runtime stops
        entries and reconciles with the venue at the first quiet moment (engine._reconcile_wanted). While
        recovery runs, the new session's user stream is not up yet: the fill is executed and its report lost."""
        after = self._venue_after(run.s, a, params)
        assert isinstance(after, RoutedState)
        run.s = after
        if a.event != "FILL" or run.s.recovery:
            return
        ref = params["order"]
        o = next(o for o in run.s.orders if o.ref == ref)
        run.slot_event("FILL", {"order": ref, "cum_lots": reported_cum(o), "cum_quote_usdt": o.quote,
                                "cum_fee_usdt": o.quote * self.bounds.fee_rate})
        run.s = attrs.evolve(run.s, reconcile_due=True)

    def _restart(self, s: RoutedState, event: str) -> RoutedState:
        """CRASH: the runtime dies and restarts (pink_fsm/runtime/recovery.py): slot and routers are lost, every
        attempt is of an earlier session now, its unreported fills are never reported (the old user stream is
        gone). Recovery then reads the venue's open orders FIRST, cancelling every own order no one works, then
        its positions, adopting the position (D9: an order can fill between the two reads; read the other way
        round the fill is in neither). RECOVER is the second read; RECONCILE re-reads after a late fill of an
        earlier-session order (persistence.reconcile)."""
        if event == "CRASH":
            # The flat snapshot a restart restores keeps the trade counter and the last trade's leverage.
            init_state, init_vars = self.exact.initial()
            init_vars = {**init_vars, "trade_seq": self.var(s, "trade_seq"), "leverage": self.var(s, "leverage")}
            orders = tuple(attrs.evolve(o, sent_cums=(*o.sent_cums, o.filled_lots))
                           if o.filled_lots > reported_cum(o) else o for o in s.orders)
            s = attrs.evolve(s, slot_state=init_state, slot_vars=self._pack(init_vars), orders=orders, working=(),
                             record_pending=0, crashes_left=s.crashes_left - 1, recovery=1, adopted_lots=0,
                             reconcile_due=False,
                             earlier=tuple(sorted({*s.earlier, *(o.ref for o in s.orders)})))
            return self._adopt(s) if self.profile.positions_first else self._cancel_earlier(s)
        if event == "RECOVER":
            s = attrs.evolve(s, recovery=0)
            s = self._cancel_earlier(s) if self.profile.positions_first else self._adopt(s)
            return self._reanchored(s) if self.profile.reanchor else s
        open_lots = self._open_lots(s)
        s = attrs.evolve(s, reconcile_due=False)
        if open_lots != abs(s.position_lots):
            # The slot's trade is folded into capital (Kernel.fold_trade) and a new book starts from venue truth:
            # its orders are no longer the current trade's.
            s = attrs.evolve(s, working=tuple(attrs.evolve(w, trade=0) for w in s.working))
            s = self._adopt(s)
        return self._reanchored(s)

    def _reanchored(self, s: RoutedState) -> RoutedState:
        """Venue truth is the ledger: capital becomes the wallet (persistence.reconcile, D5)."""
        return attrs.evolve(s, anchor_usdt=_whole(self.wallet_usdt(s) - self.net_usdt(s)))

    def net_usdt(self, s: State) -> int | Fraction:
        """The current trade's net as the slot booked it: realised PnL minus fees."""
        realised, fees = self.var(s, "realised_pnl_usdt"), self.var(s, "fees_usdt")
        assert isinstance(realised, (int, Fraction)) and isinstance(fees, (int, Fraction))
        return _whole(realised - fees)

    def wallet_usdt(self, s: State) -> int | Fraction:
        """What our fills did to the venue wallet since the start: the realised PnL of exit fills (the model's
        position is always entered at the first price level, SHORT) and every fill's fee."""
        entry_px = self.bounds.price_levels[0]
        realised = sum((o.filled_lots * entry_px - o.quote for o in s.orders if o.role == "EXIT"), Fraction(0))
        fees = sum((o.quote for o in s.orders), Fraction(0)) * self.bounds.fee_rate
        return _whole(realised - fees)

    @staticmethod
    def _cancel_earlier(s: RoutedState) -> RoutedState:
        return attrs.evolve(s, orders=tuple(attrs.evolve(o, cancel_requested=True)
                                            if o.live and o.ref in s.earlier else o for o in s.orders))

    def _open_lots(self, s: State) -> int:
        entry_filled, exited = self.var(s, "entry_filled_lots"), self.var(s, "exited_lots")
        assert isinstance(entry_filled, int) and isinstance(exited, int)
        return entry_filled - exited

    def _adopt(self, s: RoutedState) -> RoutedState:
        """The venue's position becomes the slot's trade, as persistence._adopt does: a new trade with fresh
        variables, the venue's lots and entry price, nothing realised (its past is in the wallet); no position:
        the slot is flat (persistence._reset_flat)."""
        lots = abs(s.position_lots)
        init_state, init_vars = self.exact.initial()
        trade = self.var(s, "trade_seq")
        assert isinstance(trade, int)
        fresh = {**init_vars, "trade_seq": trade, "leverage": self.var(s, "leverage")}  # persistence._fresh_vars
        if lots == 0:
            return attrs.evolve(s, slot_state=init_state, slot_vars=self._pack(fresh), adopted_lots=0)
        price = self.bounds.price_levels[0]  # the model's entries fill at the first level: the position's entry
        fresh.update(side="SHORT", leverage=self.bounds.leverages[0], trade_seq=trade + 1, entry_order=s.next_ref,
                     entry_target_lots=lots, entry_filled_lots=lots, entry_cost_usdt=lots * price, mark_px=price)
        return attrs.evolve(s, slot_state="POSITION_OPEN", slot_vars=self._pack(fresh), next_ref=s.next_ref + 1,
                            adopted_lots=lots)


def _whole(value: int | Fraction) -> int | Fraction:
    """Whole amounts as ints: equal and hash-equal to the Fraction, and much cheaper to hash."""
    return value.numerator if isinstance(value, Fraction) and value.denominator == 1 else value


class _Run:
    """One action's run to completion: the router and slot events it causes, in the runtime's order."""

    def __init__(self, m: RoutedModel, s: RoutedState) -> None:
        self.m = m
        self.s = s
        self.queue: deque[tuple[str, int, str, dict[str, ExactValue]]] = deque()  # (machine, ref, event, params)
        self.outcome = ""
        self.row = -1
        self.unhandled = ""  # what could not be taken, by which machine in which state

    def update(self, w: Working) -> None:
        self.s = attrs.evolve(self.s, working=tuple(w if x.ref == w.ref else x for x in self.s.working))

    def slot_event(self, event: str, params: dict[str, ExactValue], from_policy: bool = False) -> None:
        if from_policy:
            self._slot_step(event, params, from_policy=True)
        else:
            self.queue.append(("slot", 0, event, params))

    def router_event(self, ref: int, event: str, params: dict[str, ExactValue]) -> None:
        self.queue.append(("router", ref, event, params))

    def log(self, *entry: object) -> None:
        if self.m.glue_log is not None:
            self.m.glue_log.append(entry)

    def drain(self) -> None:
        while self.queue and not self.unhandled:
            machine, ref, event, params = self.queue.popleft()
            if machine == "slot":
                if params.get("order") not in (*self.s.earlier, FOREIGN_ORDER):  # what the router glue says
                    self.log("slot", event, params.get("order"), params.get("cum_lots"))
                self._slot_step(event, params)
            else:
                self._router_step(ref, event, params)

    # ------------------------------------------------------------------ the slot

    def _slot_step(self, event: str, params: dict[str, ExactValue], from_policy: bool = False) -> None:
        m = self.m
        step = m.exact.step(self.s.slot_state, m.vars(self.s), event, params)
        if step is None:
            self.unhandled = f"slot: {event} not handled in {self.s.slot_state}"
            return
        m.fired_slot_rows.add(step.transition.index)
        if self.row < 0:
            self.outcome, self.row = step.outcome, step.transition.index
        elif from_policy:
            self.outcome = step.outcome
        self.s = attrs.evolve(self.s, slot_state=step.dest, slot_vars=m._pack(step.vars))
        for name, args in step.emits:
            if name == "PLACE_ORDER":
                self._place(args)
            elif name == "CANCEL_ORDER":
                w = m.working_of(self.s, args["order"])
                if w is not None and not w.ended:
                    self.log("withdraw", w.ref)
                    self._router_step(w.ref, "WITHDRAW", {})
            elif name == "TRADE_CLOSED":
                trade = args["trade_seq"]
                assert isinstance(trade, int)
                self.s = attrs.evolve(self.s, record_pending=trade)

    def _place(self, args: dict[str, ExactValue]) -> None:
        m, plan = self.m, self.m.plan
        ref, lots, role = args["order"], args["qty_lots"], str(args["role"])
        assert isinstance(ref, int) and isinstance(lots, int)
        if lots <= 0:
            return
        self.log("place", ref, role, lots)
        trade = m.var(self.s, "trade_seq")
        assert isinstance(trade, int)
        state, vars_ = m.router.initial()
        w = Working(ref, role, trade, state, tuple(vars_[n] for n in m.router_var_names))
        self.s = attrs.evolve(self.s, working=(*self.s.working, w))
        entry = role == "ENTRY"
        self._router_step(ref, "PLAN", {
            "plan_role": role, "plan_style": plan.entry_style if entry else plan.exit_style,
            "plan_miss_policy": plan.entry_miss_policy, "retries": plan.entry_retries, "qty_lots": lots,
            "plan_ttl_ms": plan.entry_ttl_ms if entry else plan.exit_ttl_ms, "clock_ms": 0})

    # ------------------------------------------------------------------ the router

    def _router_step(self, ref: int, event: str, params: dict[str, ExactValue]) -> None:
        m = self.m
        w = m.working_of(self.s, ref)
        assert w is not None
        step = m.router.step(w.router_state, m.router_vars(w), event, params)
        if step is None:
            self.unhandled = f"router of #{ref}: {event} not handled in {w.router_state}"
            return
        m.fired_router_rows.add(step.transition.index)
        w = attrs.evolve(w, router_state=step.dest, router_vars=m.canonical_router_vars(step.dest, step.vars))
        self.update(w)
        for name, args in step.emits:
            if name in ("SEND_MARKET", "SEND_POST_ONLY"):
                w = self._send(w, args, name == "SEND_MARKET")
            elif name == "CANCEL_WORKING" and w.current:
                self.log("cancel", w.current)
                self.s = attrs.evolve(self.s, orders=tuple(attrs.evolve(o, cancel_requested=True)
                                                           if o.ref == w.current else o for o in self.s.orders))
            # PROBE_VENUE: the runtime's requote gate is an action of its own (RoutedModel._gate_actions)
        if step.dest in FINAL_STATES and not w.ended:
            self.update(attrs.evolve(w, ended=True))
            untouched = not w.acked and all(o.filled_lots == 0 for o in m.attempts_of(self.s, w))
            if step.dest == "REJECTED" and untouched:
                self.queue.append(("slot", 0, "REJECT", {"order": w.ref}))
            elif step.dest != "FILLED":
                self.queue.append(("slot", 0, "CANCELLED", {"order": w.ref}))

    def _send(self, w: Working, args: dict[str, ExactValue], market: bool) -> Working:
        lots = args["qty_lots"]
        assert isinstance(lots, int)
        number = len(w.attempts) + 1
        if number >= ATTEMPTS_PER_ORDER:
            raise AssertionError(f"working order #{w.ref}: more than {ATTEMPTS_PER_ORDER - 1} attempts")
        ref = w.ref * ATTEMPTS_PER_ORDER + number
        self.log("send", ref, market, lots)
        w = attrs.evolve(w, attempts=(*w.attempts, ref))
        self.update(w)
        # Reduce-only: with no position left to reduce, the venue refuses an exit order (the REST answer).
        refused = w.role == "EXIT" and self.s.position_lots == 0
        self.s = attrs.evolve(self.s, orders=(*self.s.orders, VenueOrder(ref, w.role, w.trade, lots,
                                                                          live=not refused)))
        if refused:
            self.log("report", "REJECT", ref, False)
            self.queue.append(("router", w.ref, "REJECT", {"post_only_would_take": False}))
        return w


FINAL_STATES = frozenset({"FILLED", "PARTIAL_DONE", "SKIPPED", "REJECTED", "WITHDRAWN"})


def model_for(profile: str, machines: dict[str, Machine]) -> ComposedModel:
    """The composed model a profile names: slot x venue (model.PROFILES) or slot x router x venue
    (ROUTED_PROFILES), built from the named machines of a spec dir. KeyError for an unknown profile."""
    from pink_codegen.verify.model import PROFILES

    if profile in ROUTED_PROFILES:
        return RoutedModel(machines["slot"], machines["router"], ROUTED_PROFILES[profile], machines.get("venue"))
    return ComposedModel(machines["slot"], PROFILES[profile], machines.get("venue"))


# ------------------------------------------------------------------ composed invariants


def routed_violations(m: RoutedModel, s: State) -> list[tuple[str, str]]:
    """(invariant, detail) for each composed invariant that fails in s: the slot x venue catalogue read through
    the working orders (a working order's fills are its attempts' fills), plus the router's own invariants."""
    assert isinstance(s, RoutedState)
    out: list[tuple[str, str]] = []
    var = m.var
    trade = var(s, "trade_seq")

    def reported(w: Working | None) -> tuple[int, Fraction]:
        if w is None:
            return 0, Fraction(0)
        attempts = m.attempts_of(s, w)
        if m.bounds.lagging:
            return (sum(reported_cum(o) for o in attempts),
                    sum((m.quote(o.role, reported_cum(o)) for o in attempts), Fraction(0)))
        return sum(o.filled_lots for o in attempts), sum((o.quote for o in attempts), Fraction(0))

    entry_filled, entry_quote = reported(m.working_of(s, var(s, "entry_order")))
    entry_fee_quote = entry_quote
    if s.adopted_lots:  # adopted from the venue's position at its entry price; its entry fee is in the wallet
        entry_filled, entry_quote = s.adopted_lots, s.adopted_lots * m.bounds.price_levels[0]
        entry_fee_quote = Fraction(0)
    exits = [reported(w) for w in s.working if w.role == "EXIT" and w.trade == trade]
    exited = sum(lots for lots, _ in exits)
    exit_quote = sum((quote for _, quote in exits), Fraction(0))
    if var(s, "entry_filled_lots") != entry_filled or var(s, "exited_lots") != exited:
        out.append(("books_match_venue", f"slot entry {var(s, 'entry_filled_lots')}/exited {var(s, 'exited_lots')} "
                                         f"lots, venue reported {entry_filled}/{exited}"))
    live_entries = [o for o in s.orders if o.role == "ENTRY" and o.live and o.ref not in s.earlier]
    target = var(s, "entry_target_lots")
    assert isinstance(target, int)
    # An earlier session's order racing recovery's cancel may still add to the position until reconciled.
    settled = not s.recovery and not s.reconcile_due and not any(o.live for o in s.orders if o.ref in s.earlier)
    if len(live_entries) > 1 or (settled and abs(s.position_lots) > target):
        out.append(("one_entry_exposure", f"{len(live_entries)} live entry attempts, venue position "
                                          f"{s.position_lots} lots for a trade of {target}"))
    if var(s, "entry_cost_usdt") != entry_quote or var(s, "exit_cost_usdt") != exit_quote:
        out.append(("booked_at_venue_prices", f"slot quotes entry {var(s, 'entry_cost_usdt')} exit "
                                              f"{var(s, 'exit_cost_usdt')}, venue {entry_quote} / {exit_quote}"))
    if var(s, "fees_usdt") != (entry_fee_quote + exit_quote) * m.bounds.fee_rate:
        out.append(("fees_match_venue", f"slot fees {var(s, 'fees_usdt')}, venue charged "
                                        f"{(entry_fee_quote + exit_quote) * m.bounds.fee_rate}"))
    reported_all = not any(o.filled_lots > reported_cum(o) for o in s.orders)
    if not s.recovery and not s.reconcile_due and reported_all:
        capital = s.anchor_usdt + m.net_usdt(s)
        if capital != m.wallet_usdt(s):
            out.append(("capital_consistency", f"kernel capital {capital} USDT (anchor {s.anchor_usdt} + trade "
                                               f"net {m.net_usdt(s)}), venue wallet {m.wallet_usdt(s)} USDT"))
    if not s.recovery and not s.reconcile_due and \
            s.position_lots - m._unreported_lots(s) != -m._open_lots(s):  # the model's trades are SHORT
        out.append(("book_matches_position", f"slot holds {m._open_lots(s)} lots, the venue's position is "
                                             f"{s.position_lots} ({m._unreported_lots(s)} not reported yet)"))
    if s.record_pending and s.record_pending != trade:
        out.append(("record_before_next_trade", f"trade {trade} started while the record of trade "
                                                f"{s.record_pending} is not durable"))
    waiting = {"EXIT_REQUESTED": "entry_order", "ENTRY_CANCELLING": "entry_order", "EXIT_CANCELLING": "exit_order"}
    if s.slot_state in waiting:
        w = m.working_of(s, var(s, waiting[s.slot_state]))
        if w is not None and not w.ended and w.router_state not in ("WITHDRAWING", "WITHDRAWN"):
            out.append(("cancel_in_flight", f"{s.slot_state} waits for a cancel of #{w.ref} the router never "
                                            f"withdrew (router {w.router_state})"))
    closed = s.slot_state in ("CLOSED", "TRADE_TERMINAL_WRITTEN") and var(s, "entry_filled_lots") == exited
    if closed and var(s, "realised_pnl_usdt") != entry_quote - exit_quote:  # the model's trades are SHORT
        out.append(("closed_pnl_is_price_change", f"realised {var(s, 'realised_pnl_usdt')}, venue quotes give "
                                                  f"{entry_quote - exit_quote}"))
    for w in s.working:
        asked = m.router_var(w, "target_lots")
        assert isinstance(asked, int)
        executed = sum(o.filled_lots for o in m.attempts_of(s, w))
        if executed > asked:
            out.append(("working_within_target", f"working order #{w.ref} asked for {asked} lots, its attempts "
                                                 f"executed {executed}"))
        live = [o.ref for o in m.attempts_of(s, w) if o.live]
        if len(live) > 1:
            out.append(("one_live_attempt", f"working order #{w.ref} has {len(live)} live attempts {live}"))
        for name in m.router.violated(w.router_state, m.router_vars(w)):
            out.append((f"router.{name}", f"router of #{w.ref} in {w.router_state}"))
    return out


ROUTED_REACHABILITY = {
    "working_orders_end": ("no_stranded_exit", "from every state, a state where every working order has ended (its "
                                               "router in a final state) is reachable: no router waits forever"),
}

# name -> (catalogue, why); the router's spec invariants are reported as router.<name>
ROUTED_COMPOSED = {
    "capital_consistency": ("capital_consistency", "whenever every fill is reported, outside recovery and a due "
                                                   "reconcile, kernel capital (anchor + the trade's net) equals "
                                                   "what our fills did to the venue wallet (D5)"),
    "book_matches_position": ("single_book", "outside recovery and a due reconcile, the slot's open lots are the "
                                             "venue's position as reported to it (crash/recovery: D5, D9)"),
    "working_within_target": ("fill_identity", "a working order's attempts never execute more than it asked for "
                                               "(every re-send is for the rest only)"),
    "one_live_attempt": ("no_double_entry", "at most one attempt of a working order is live at the venue"),
}


__all__ = ["ROUTED_COMPOSED", "ROUTED_PROFILES", "ROUTED_REACHABILITY", "ExecPlan", "RoutedModel", "RoutedProfile",
           "RoutedState", "Working", "model_for", "routed_bounds", "routed_violations"]
