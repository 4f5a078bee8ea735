"""The spec mutant catalogue of `pink-codegen verify` (issue 5) and the kill matrix over it.

Why: a model checker that finds nothing proves little unless it is shown to find the bugs it is there for.
Each mutant re-introduces one plausible bug (a historic defect of ../shared/design/DEFECTS.md, or a way to
strand an exit) into `spec/slot.yaml` as exact text replacements, and must be killed by the checker: the first
violation names the invariant the bug breaks and comes with a shortest counterexample starting at the policy's
ENTER. The mutated spec text exists only in memory (loaded with `load_machine_text`); nothing is ever written
into spec/. `pink-codegen verify --mutants` prints the kill matrix; `tests/test_verify_mutants.py` asserts it.

Only the slot machine is composed today (no router, no crash/recovery, no account model), so the catalogue
holds the mutants that model can see: `CATALOGUE` on small per-mutant bounds (as small as still exposes the
bug, so the fast engine checks each in well under a second and the spec loader's overlap analysis, about 1.5 s
per mutant, dominates), `CAPABILITY_MUTANTS` on the `mutants` profile (the model capabilities they need: fills
reported after their cancel confirmation, a lagging stream and REST probe, two fill prices per order, oversized
exits, three exit legs; the reference engine, since the fast one does not encode those). Three more lists keep
the rest honest:

* `SURVIVORS`: plausible bugs verify does NOT kill, each with the precise missing invariant or model capability
  (the tests mark them `xfail(strict=True)`, so a fix promotes them); none today;
* `EQUIVALENT`: mutants that change nothing any property can observe, with the reason (checked: their search
  completes without a violation); kept out of the count;
* `REJECTED_BY_LOADER`: mutants the spec compiler's static checks refuse (overlapping guards, unreachable
  states) before verify ever runs, with part of the loader's message; kept out of the count too.

A mutant's edits name the exact text they replace and how often it occurs. When slot.yaml changes so that an
edit's text no longer occurs exactly that often, the mutant is `stale`: it would otherwise mutate nothing (and
"survive") or mutate something else, so it is reported as an error to fix here, never as a kill or a survivor.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import attrs

from pink_codegen.errors import SpecError
from pink_codegen.loader import load_machine_text
from pink_codegen.verify.model import PROFILES, Bounds, ComposedModel
from pink_codegen.verify.routed import ROUTED_PROFILES, ExecPlan, RoutedModel, RoutedProfile, routed_bounds

# What a catalogued mutant is expected to do under verify.
Expect = Literal["killed", "survives", "equivalent", "refused"]
# What it did: killed (a property violated), survived (none, or the search was cut short), equivalent (an
# EQUIVALENT mutant whose complete search found nothing, as claimed), refused (the spec compiler rejected the
# mutated text), stale (an edit's text no longer occurs in slot.yaml as often as declared; nothing was checked).
Status = Literal["killed", "survived", "equivalent", "refused", "stale"]
STATUSES: tuple[Status, ...] = ("killed", "survived", "equivalent", "refused", "stale")
WHERE = "pink_codegen/verify/mutants.py"


def bounds(name: str, max_trades: int = 1, max_lots: int = 1, cancel_budget: int = 0, reject_budget: int = 0,
           duplicate_budget: int = 0, foreign_budget: int = 0, venue_cancel_budget: int = 0) -> Bounds:
    """Small bounds: one trade of one lot, no faults, unless the mutant needs more."""
    return Bounds(name, max_trades=max_trades, max_lots=max_lots, cancel_budget=cancel_budget,
                  reject_budget=reject_budget, duplicate_budget=duplicate_budget, foreign_budget=foreign_budget,
                  venue_cancel_budget=venue_cancel_budget)


ONE_LOT = bounds("one-lot")
PARTIAL_FILLS = bounds("partial-fills", max_lots=2)  # one lot at a time or both: cumulative vs incremental
THREE_LOTS = bounds("three-lots", max_lots=3)  # an entry remainder that fills in two more steps
PARTIAL_CANCEL = bounds("partial-cancel", max_lots=2, cancel_budget=1)  # fills racing one policy cancel
CANCEL = bounds("cancel", cancel_budget=1)
REJECT = bounds("cancel-reject", cancel_budget=1, reject_budget=1)
VENUE_CANCEL = bounds("venue-cancel", venue_cancel_budget=1)  # a venue-side cancel / expiry (TTL)
FOREIGN = bounds("foreign", foreign_budget=1)
DUPLICATES = bounds("duplicates", max_lots=2, duplicate_budget=1)
TWO_TRADES = bounds("two-trades", max_trades=2)
TWO_TRADES_2 = bounds("two-trades-2-lots", max_trades=2, max_lots=2)



@attrs.frozen
class Edit:
    """One exact text replacement. `count` is how often `old` occurs in slot.yaml (every occurrence is replaced):
    pinning it means a spec change that moves or duplicates the text makes the mutant stale instead of silently
    mutating something else."""

    old: str
    new: str
    count: int = 1


class StaleMutant(ValueError):
    """A mutant's edits no longer match the slot.yaml they are applied to; the message names the mutant and the
    missing text, and says where to update the edit."""


def _excerpt(text: str, width: int = 100) -> str:
    """`text` short enough for one line of a message, still recognisable (and findable) in slot.yaml."""
    shown = repr(text)
    return shown if len(shown) <= width else shown[:width - 4] + "...'"


@attrs.frozen
class Mutant:
    """One plausible bug: the edits that re-introduce it into slot.yaml, the bounds that expose it, and what verify
    is expected to say (`kills`: the acceptable names of the first violated invariant)."""

    name: str
    defect: str  # the historic defect (../shared/design/DEFECTS.md) or the property it re-introduces
    bug: str
    edits: tuple[Edit, ...]
    bounds: Bounds
    kills: frozenset[str] = frozenset()
    expect: Expect = "killed"
    why_survives: str = ""  # SURVIVORS: the missing invariant or model capability; EQUIVALENT: why no property sees it
    refused_with: str = ""  # REJECTED_BY_LOADER: part of the spec compiler's message
    # The spec the edits apply to: "slot" (checked on the slot x venue model with `bounds`) or "router" (checked
    # on the slot x router x venue model with `routed`, whose bounds are `bounds`); "runtime": no spec edit, the
    # bug is a runtime procedure the model mirrors, switched on in `routed` (recovery's read order).
    machine: str = "slot"
    routed: RoutedProfile | None = None

    def apply(self, spec_text: str) -> str:
        """The mutated spec text (in memory only). Raises StaleMutant when an edit's text does not occur in
        `spec_text` (the mutant's machine's YAML) exactly `count` times, or when the edits change nothing. A
        runtime mutant edits no spec (its bug is in the runtime procedure its profile switches on): the text is
        returned as it is."""
        if self.machine == "runtime":
            return spec_text
        text = spec_text
        where = f"{self.machine}.yaml"
        for k, e in enumerate(self.edits, start=1):
            found = spec_text.count(e.old)
            if found != e.count:
                raise StaleMutant(
                    f"mutant {self.name} is stale: edit {k} of {len(self.edits)} expects {e.count} occurrence(s) of "
                    f"{_excerpt(e.old)} in {where}, found {found}; update the edit in {WHERE}")
            text = text.replace(e.old, e.new)
        if text == spec_text:
            raise StaleMutant(f"mutant {self.name} is stale: its edits change nothing in {where}; update the edit "
                              f"in {WHERE}")
        return text


Edits = Sequence[tuple[str, str] | tuple[str, str, int]]


def M(name: str, defect: str, bug: str, edits: Edits, b: Bounds, kills: Iterable[str] = ()) -> Mutant:
    """A mutant verify must kill with one of `kills`."""
    return Mutant(name, defect, bug, tuple(Edit(*e) for e in edits), b, frozenset(kills))


def _survivor(name: str, defect: str, bug: str, edits: Edits, b: Bounds, why_survives: str) -> Mutant:
    """A mutant verify does not kill yet; `why_survives` names the missing invariant or model capability."""
    return Mutant(name, defect, bug, tuple(Edit(*e) for e in edits), b, expect="survives", why_survives=why_survives)


def _equivalent(name: str, defect: str, bug: str, edits: Edits, b: Bounds, why_survives: str) -> Mutant:
    """A mutant no property can tell from the spec; `why_survives` says why."""
    return Mutant(name, defect, bug, tuple(Edit(*e) for e in edits), b, expect="equivalent",
                  why_survives=why_survives)


def _refused(name: str, defect: str, bug: str, edits: Edits, b: Bounds, refused_with: str) -> Mutant:
    """A mutant the spec compiler rejects, its message containing `refused_with`."""
    return Mutant(name, defect, bug, tuple(Edit(*e) for e in edits), b, expect="refused", refused_with=refused_with)


# Anchors shared by several mutants (each one exact text of spec/slot.yaml).
EXIT_PNL = ("      realised_pnl_usdt: realised_pnl_usdt + sign(side) * (delta_quote_usdt - basis_usdt)\n"
            "      fees_usdt: fees_usdt + (cum_fee_usdt - exit_order_fee_usdt)\n"
            "      active_leg: active_leg + 1 if leg_done else active_leg\n")
ENTRY_PARTIAL_BOOKING = ("      entry_cost_usdt: cum_quote_usdt\n      entry_fee_usdt: cum_fee_usdt\n"
                         "      fees_usdt: fees_usdt + fee_delta_usdt\n    to: ENTRY_PARTIAL\n")
LATE_ENTRY_FILL = ("    guard: *entry_fill\n    let: *entry_fill_let\n    effect: *entry_fill_effect\n    to: \"=\"\n"
                   "    doc: A late entry fill while exiting")
ENTER_FROM = "  - from: [IDLE, ORDER_REJECTED, TRADE_TERMINAL_WRITTEN]\n    event: ENTER\n    guard: >-\n"
ENTER_GUARD = ("      not entries_frozen and probe_ok and venue_position_lots == 0 and own_fill_age_ms >= "
               "hot_window_ms\n")
EXIT_SIZE = '      size_lots: "min(qty_lots, active_leg_lots) if qty_lots > 0 else active_leg_lots"\n'
REQUESTED_EXIT_SIZE = '      size_lots: "min(exit_wanted_lots, open_lots) if exit_wanted_lots > 0 else open_lots"\n'
REQUESTED_EXIT_EMIT = ("      - PLACE_ORDER: {order: exit_order, role: EXIT, side: side, qty_lots: size_lots, "
                       "reduce_only: true}\n    to: EXIT_SENT\n")
REPORTS_COMMENT = "  # Reports that change nothing: duplicates, stale and foreign orders, contradictions.\n"
EXIT_IDENTITY = ("order == exit_order and order != NO_ORDER and order != entry_order\n"
                 "      and cum_lots > exit_filled_lots")
EXIT_REQUESTED_ENTRY_COMPLETE = (
    "  - from: EXIT_REQUESTED\n    event: FILL\n    guard: *entry_fill_complete\n    let: *entry_fill_let\n"
    "    effect:\n      entry_filled_lots: cum_lots\n      entry_cost_usdt: cum_quote_usdt\n"
    "      entry_fee_usdt: cum_fee_usdt\n      fees_usdt: fees_usdt + fee_delta_usdt\n"
    '      exit_target_lots: "min(exit_wanted_lots, cum_lots - exited_lots) if exit_wanted_lots > 0 else cum_lots - '
    'exited_lots"\n    emit:\n      - PLACE_ORDER: {order: exit_order, role: EXIT, side: side, qty_lots: "min('
    'exit_wanted_lots, cum_lots - exited_lots) if exit_wanted_lots > 0 else cum_lots - exited_lots", reduce_only: '
    "true}\n    to: EXIT_SENT\n    priority: 1\n    doc: >-\n      The entry remainder filled instead of being "
    "cancelled: no cancel confirmation will come, so send the\n      exit now or it would be stranded "
    "(no_stranded_exit).\n")

BOOKS = {"books_match_venue", "booked_at_venue_prices"}

CATALOGUE: tuple[Mutant, ...] = (
    # ------------------------------------------------------------------ D1: leverage never enters PnL
    M("pnl_times_leverage", "D1", "realised PnL of each exit fill multiplied by the trade's leverage",
      [(EXIT_PNL, EXIT_PNL.replace("+ sign(side)", "+ leverage * sign(side)"))], ONE_LOT,
      {"pnl_is_price_change", "closed_pnl_is_price_change"}),
    M("pnl_without_side", "D1", "realised PnL booked as exit quote - basis whatever the side (a short's sign lost)",
      [(EXIT_PNL, EXIT_PNL.replace("+ sign(side) * (delta_quote_usdt - basis_usdt)",
                                   "+ (delta_quote_usdt - basis_usdt)"))], ONE_LOT,
      {"pnl_is_price_change", "closed_pnl_is_price_change"}),
    # ------------------------------------------------------------------ D2 / D4: the venue's fill prices
    M("exit_booked_at_entry_vwap", "D2", "an exit fill booked at a price the slot chose (the entry VWAP, like "
      "the order's nominal protective price) instead of the venue's fill quote",
      [("      delta_quote_usdt: cum_quote_usdt - exit_order_cost_usdt\n",
        "      delta_quote_usdt: delta_lots * entry_vwap_px\n")], ONE_LOT,
      {"booked_at_venue_prices", "closed_pnl_is_price_change"}),
    M("entry_vwap_over_target", "D4", "entry VWAP divided by the lots the entry asked for, not the lots it filled",
      [("    expr: entry_cost_usdt / entry_filled_lots if entry_filled_lots > 0 else 0\n",
        "    expr: entry_cost_usdt / entry_target_lots if entry_target_lots > 0 else 0\n")], PARTIAL_CANCEL,
      {"closed_pnl_is_price_change"}),
    # ------------------------------------------------------------------ D3: routing by order identity
    M("late_entry_fill_booked_as_exit", "D3", "a late fill of the entry remainder while exiting booked as an exit "
      "fill (routed by state, not by order identity)",
      [(LATE_ENTRY_FILL, LATE_ENTRY_FILL.replace(
          "    let: *entry_fill_let\n    effect: *entry_fill_effect\n",
          "    let:\n      delta_lots: cum_lots - exit_filled_lots\n"
          "      delta_quote_usdt: cum_quote_usdt - exit_order_cost_usdt\n"
          "    effect:\n      exit_filled_lots: cum_lots\n      exit_order_cost_usdt: cum_quote_usdt\n"
          "      exited_lots: exited_lots + delta_lots\n      exit_cost_usdt: exit_cost_usdt + delta_quote_usdt\n"))],
      THREE_LOTS, {"exits_within_entry", "exit_order_within_target", "pnl_is_price_change", *BOOKS}),
    M("late_entry_fill_dropped_while_exiting", "D3", "a late entry fill in EXIT_REQUESTED not expected by state, so "
      "refused and never booked",
      [("    except: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING, IDLE, ORDER_REJECTED, CLOSED, "
        "TRADE_TERMINAL_WRITTEN]\n    event: FILL\n",
        "    except: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING, IDLE, ORDER_REJECTED, CLOSED, "
        "TRADE_TERMINAL_WRITTEN, EXIT_REQUESTED]\n    event: FILL\n")], THREE_LOTS, BOOKS),
    M("entry_fill_racing_cancel_ignored", "D3", "an entry fill that races our cancel acknowledged but not booked",
      [("    guard: *entry_fill\n    let: *entry_fill_let\n    effect: *entry_fill_effect\n    to: \"=\"\n"
        "    doc: A fill that raced the entry cancel",
        "    guard: *entry_fill\n    to: \"=\"\n    doc: A fill that raced the entry cancel")], PARTIAL_CANCEL, BOOKS),
    M("exit_fill_racing_cancel_ignored", "D3", "an exit fill that races our cancel refused (EXIT_CANCELLING dropped "
      "from the row that books it)",
      [("  - from: [EXIT_CANCELLING, POSITION_OPEN, PARTIALLY_CLOSED]\n    event: FILL\n    guard: *exit_fill\n",
        "  - from: [POSITION_OPEN, PARTIALLY_CLOSED]\n    event: FILL\n    guard: *exit_fill\n")],
      PARTIAL_CANCEL, BOOKS),
    # ------------------------------------------------------------------ D5: re-anchoring
    M("carried_pnl_not_reanchored", "D5", "a new trade starts with the previous trade's realised PnL (settled PnL "
      "not re-anchored, booked twice)",
      [("      closed_basis_usdt: 0\n      realised_pnl_usdt: 0\n", "      closed_basis_usdt: 0\n")], TWO_TRADES,
      {"pnl_is_price_change", "closed_pnl_is_price_change"}),
    M("exited_lots_not_reanchored", "D5", "a new trade starts with the previous trade's exited lots",
      [("      prev_exit_fee_usdt: 0\n      exited_lots: 0\n", "      prev_exit_fee_usdt: 0\n")], TWO_TRADES,
      {"exits_within_entry", "books_match_venue"}),
    M("exit_cumulative_not_reanchored_per_order", "D5/D14", "a new exit order keeps the previous order's cumulative "
      "executed lots, so its first report looks like a duplicate",
      [("      exit_target_lots: size_lots\n      exit_filled_lots: 0\n", "      exit_target_lots: size_lots\n")],
      PARTIAL_FILLS, BOOKS),
    # ------------------------------------------------------------------ D7: foreign fills
    M("foreign_fill_taken_as_entry", "D7", "a fill of an order that is not ours, arriving while the entry works, "
      "attributed to the entry (by symbol)",
      [(REPORTS_COMMENT,
        "  - from: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING]\n    event: FILL\n"
        "    guard: order != entry_order and order != exit_order and cum_lots > entry_filled_lots and cum_lots <= "
        "entry_target_lots\n    effect:\n      entry_filled_lots: cum_lots\n      entry_cost_usdt: cum_quote_usdt\n"
        "    to: \"=\"\n    priority: 1\n    doc: Mutant.\n" + REPORTS_COMMENT)], FOREIGN,
      {"exits_within_entry", *BOOKS}),
    # ------------------------------------------------------------------ D14: cumulative reports
    M("entry_lots_cumulative_as_incremental", "D14", "the entry's cumulative executed lots added as an increment",
      [("    effect: &entry_fill_effect\n      entry_filled_lots: cum_lots\n",
        "    effect: &entry_fill_effect\n      entry_filled_lots: entry_filled_lots + cum_lots\n")], PARTIAL_FILLS,
      {"exits_within_entry", "books_match_venue", "bounds"}),
    M("entry_quote_cumulative_as_incremental", "D14", "the entry's cumulative quote added as an increment",
      [(ENTRY_PARTIAL_BOOKING, ENTRY_PARTIAL_BOOKING.replace("entry_cost_usdt: cum_quote_usdt",
                                                             "entry_cost_usdt: entry_cost_usdt + cum_quote_usdt"))],
      PARTIAL_FILLS, {"booked_at_venue_prices"}),
    M("exit_lots_cumulative_as_incremental", "D14", "an exit order's cumulative lots added to the trade's exited lots",
      [("      exited_lots: exited_lots + delta_lots\n", "      exited_lots: exited_lots + cum_lots\n", 2)],
      PARTIAL_FILLS,
      {"exits_within_entry", "books_match_venue", "flat_when_free", "closed_means_flat"}),
    M("exit_quote_cumulative_as_incremental", "D14", "an exit order's cumulative quote added to the trade's exit quote",
      [("      exit_cost_usdt: exit_cost_usdt + delta_quote_usdt\n",
        "      exit_cost_usdt: exit_cost_usdt + cum_quote_usdt\n", 2)], PARTIAL_FILLS,
      {"pnl_is_price_change", "booked_at_venue_prices"}),
    M("exit_order_cumulative_as_trade_total", "D14", "the reverse: one exit order's cumulative lots taken as the "
      "trade's exited lots (a second exit order forgets the first)",
      [("      exited_lots: exited_lots + delta_lots\n", "      exited_lots: cum_lots\n", 2)], PARTIAL_FILLS,
      {"books_match_venue", "flat_when_free", "closed_means_flat"}),
    # ------------------------------------------------------------------ D15: single slot, exits sized from the slot
    M("no_single_slot_check", "D15", "ENTER accepted while a position is open: neither the slot's state nor the "
      "venue position gates it",
      [(ENTER_FROM + ENTER_GUARD,
        ENTER_FROM.replace("TRADE_TERMINAL_WRITTEN]", "TRADE_TERMINAL_WRITTEN, POSITION_OPEN, PARTIALLY_CLOSED]")
        + ENTER_GUARD.replace(" venue_position_lots == 0 and", ""))], TWO_TRADES,
      {"one_entry_exposure", "books_match_venue"}),
    M("exit_sized_from_entry_target", "D15", "an exit of the active leg sized from what the entry asked for, not "
      "what it filled (an exit bigger than the open qty)",
      [(EXIT_SIZE, EXIT_SIZE.replace("else active_leg_lots", "else entry_target_lots - exited_lots"))],
      PARTIAL_CANCEL, BOOKS),
    M("requested_exit_sized_from_entry_target", "D15", "the exit sent after the entry cancel sized from the entry's "
      "target, not the final filled qty",
      [(REQUESTED_EXIT_SIZE, REQUESTED_EXIT_SIZE.replace("else open_lots", "else entry_target_lots"))],
      PARTIAL_CANCEL, BOOKS),
    M("exit_target_not_recorded", "D15", "the exit order's size sent to the venue but not recorded, so its fills "
      "look like over-fills",
      [("      exit_wanted_lots: qty_lots\n      exit_target_lots: size_lots\n", "      exit_wanted_lots: qty_lots\n")],
      ONE_LOT, BOOKS),
    # ------------------------------------------------------------------ no_stranded_exit / no_double_entry
    M("partial_entry_cancel_frees_slot", "D9-like", "an entry cancelled while part-filled goes back to IDLE, "
      "forgetting the partial position (a free slot with exposure, as in D9)",
      [("    guard: order == entry_order and entry_filled_lots > 0\n    to: POSITION_OPEN\n",
        "    guard: order == entry_order and entry_filled_lots > 0\n    to: IDLE\n")], PARTIAL_CANCEL,
      {"flat_when_free"}),
    M("exit_expiry_ends_trade", "exit TTL->MARKET", "an exit order cancelled or expired with nothing closed ends "
      "the trade instead of returning to POSITION_OPEN for the MARKET escalation",
      [("    guard: order == exit_order and exited_lots == 0\n    to: POSITION_OPEN\n",
        "    guard: order == exit_order and exited_lots == 0\n    to: IDLE\n")], VENUE_CANCEL, {"flat_when_free"}),
    M("requested_exit_never_sent", "no_stranded_exit", "after the entry cancel, EXIT_REQUESTED moves to EXIT_SENT "
      "without placing the exit",
      [("    emit:\n" + REQUESTED_EXIT_EMIT, "    to: EXIT_SENT\n")], PARTIAL_CANCEL,
      {"flat_reachable"}),
    M("requested_exit_placed_for_pre_fill_qty", "no_stranded_exit", "the exit sent when the entry remainder fills "
      "is sized on the pre-fill open qty (emit and effect disagree)",
      [('qty_lots: "min(exit_wanted_lots, cum_lots - exited_lots) if exit_wanted_lots > 0 else cum_lots - '
        'exited_lots"', 'qty_lots: "min(exit_wanted_lots, open_lots) if exit_wanted_lots > 0 else open_lots"')],
      PARTIAL_FILLS, {"flat_reachable"}),
    M("entry_complete_in_exit_requested_stays", "no_stranded_exit", "the entry remainder filling in EXIT_REQUESTED "
      "is booked as a late entry fill and the slot keeps waiting for a cancel confirmation that never comes",
      [(EXIT_REQUESTED_ENTRY_COMPLETE, "")], PARTIAL_FILLS, {"flat_reachable"}),
    M("entry_complete_while_cancelling_waits", "no_stranded_exit", "an entry that fills completely while our cancel "
      "is pending stays in ENTRY_CANCELLING",
      [("  - from: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL, ENTRY_CANCELLING]\n    event: FILL\n"
        "    guard: &entry_fill_complete",
        "  - from: [ENTRY_SUBMITTED, ENTRY_WORKING, ENTRY_PARTIAL]\n    event: FILL\n    guard: &entry_fill_complete")],
      CANCEL, {"flat_reachable"}),
    M("exit_complete_while_cancelling_waits", "no_stranded_exit", "an exit that fills completely (lots still open) "
      "while our cancel is pending stays in EXIT_CANCELLING (the second bug verify found)",
      [("    effect: *exit_fill_effect\n    to: PARTIALLY_CLOSED\n    doc: >-\n      The exit order filled completely "
        "while its cancel",
        "    effect: *exit_fill_effect\n    to: \"=\"\n    doc: >-\n      The exit order filled completely "
        "while its cancel")], PARTIAL_CANCEL, {"flat_reachable"}),
    M("exit_reject_while_cancelling_waits", "no_stranded_exit", "an exit rejected while our cancel is pending waits "
      "for a cancel confirmation (the first bug verify found)",
      [("  - from: [EXIT_SENT, EXIT_CANCELLING]\n    event: REJECT\n", "  - from: EXIT_SENT\n    event: REJECT\n")],
      REJECT, {"flat_reachable"}),
    # ------------------------------------------------------------------ killed by the invariants added after review
    M("entry_fee_cumulative_as_incremental", "D14", "the entry's cumulative fee added to the trade's fees as an "
      "increment",
      [("      fee_delta_usdt: cum_fee_usdt - entry_fee_usdt\n", "      fee_delta_usdt: cum_fee_usdt\n")],
      PARTIAL_FILLS,
      kills={"fees_match_venue"}),
    M("enter_before_record_durable", "D12", "ENTER accepted in CLOSED, before the trade's terminal record is durable",
      [("[IDLE, ORDER_REJECTED, TRADE_TERMINAL_WRITTEN]", "[IDLE, ORDER_REJECTED, TRADE_TERMINAL_WRITTEN, CLOSED]", 5)],
      TWO_TRADES,
      kills={"record_before_next_trade"}),
    M("entry_reject_while_cancelling_waits", "no_stranded_exit", "an entry rejected while our cancel is pending "
      "waits for a cancel confirmation that never comes",
      [("  - from: [ENTRY_SUBMITTED, ENTRY_CANCELLING]\n    event: REJECT\n",
        "  - from: ENTRY_SUBMITTED\n    event: REJECT\n")], REJECT,
      kills={"slot_free_reachable"}),
    M("exit_request_sends_no_entry_cancel", "no_stranded_exit", "EXIT during a part-filled entry waits in "
      "EXIT_REQUESTED for the entry cancel, but never asks for it",
      [("    emit:\n      - CANCEL_ORDER: {order: entry_order}\n    doc: >-\n      Exit while the entry remainder",
        "    doc: >-\n      Exit while the entry remainder")], PARTIAL_FILLS,
      kills={"cancel_in_flight"}),
)

# The six that survived every profile until the model learnt what they need (issue 5): each is killed on the
# `mutants` profile, which turns those capabilities on (a fill reported after its cancel confirmation, a user
# stream and REST probe that lag the venue, two fill prices per order, oversized exits, three exit legs).
MUTANTS_PROFILE = PROFILES["mutants"]
CAPABILITY_MUTANTS: tuple[Mutant, ...] = (
    M("enter_ignores_hot_window", "D8", "the requote venue-truth gate dropped: ENTER within the hot window of an "
      "own fill",
      [(ENTER_GUARD, ENTER_GUARD.replace(" and own_fill_age_ms >= hot_window_ms", ""))], MUTANTS_PROFILE,
      {"one_entry_exposure"}),  # a lagging fill the REST probe does not show yet: only the hot window stops it
    M("enter_ignores_venue_position", "D15", "ENTER while the venue probe shows a position",
      [(ENTER_GUARD, ENTER_GUARD.replace(" venue_position_lots == 0 and", ""))], MUTANTS_PROFILE,
      {"one_entry_exposure"}),  # a fill reported after its cancel confirmation, once the hot window passed
    M("entry_basis_is_last_fill_price", "D4", "entry basis = the last fill's price instead of the VWAP of all fills",
      [(ENTRY_PARTIAL_BOOKING, ENTRY_PARTIAL_BOOKING.replace(
          "entry_cost_usdt: cum_quote_usdt",
          "entry_cost_usdt: cum_lots * ((cum_quote_usdt - entry_cost_usdt) / (cum_lots - entry_filled_lots))"))],
      MUTANTS_PROFILE, {"booked_at_venue_prices"}),  # an entry's second lot at the second price level
    M("exit_size_not_capped", "D15", "an exit command's size not capped at the active leg / open qty",
      [(EXIT_SIZE, EXIT_SIZE.replace("min(qty_lots, active_leg_lots)", "qty_lots"))], MUTANTS_PROFILE,
      {"books_match_venue", "exits_within_entry", "exit_order_within_target"}),  # EXIT of max_lots + 1 lots
    M("leg_size_not_capped_at_open", "D15", "a non-final exit leg sized at its goal even when fewer lots are open",
      [("min(open_lots, leg_goal_lots - leg_exited_lots)", "leg_goal_lots - leg_exited_lots")], MUTANTS_PROFILE,
      {"books_match_venue", "exits_within_entry", "exit_order_within_target"}),  # 3 legs, an exit that overshot leg 0
    M("late_entry_fill_after_cancel_dropped", "D3", "a fill of the entry order after its cancel was confirmed "
      "(slot back in IDLE) is not booked",
      [("  - from: [IDLE, ORDER_REJECTED, CLOSED, TRADE_TERMINAL_WRITTEN]\n    event: FILL\n",
        "  - from: [ORDER_REJECTED, CLOSED, TRADE_TERMINAL_WRITTEN]\n    event: FILL\n")], MUTANTS_PROFILE,
      BOOKS),  # the cancel confirmation overtakes the fill's report
    # The bug the `mutants` profile found in the spec (fixed): a closed lot's basis taken at the entry VWAP of the
    # moment, so an entry fill booked after an exit (reported after its cancel confirmation, at the second price)
    # re-values the VWAP and the closed trade no longer realises its price change.
    M("exit_basis_is_entry_vwap", "D4", "an exit fill's basis taken at the VWAP of all entry fills rather than the "
      "average price of the lots still open",
      [("      basis_usdt: delta_lots * open_avg_px\n", "      basis_usdt: delta_lots * entry_vwap_px\n", 2)],
      MUTANTS_PROFILE, {"closed_pnl_is_price_change"}),
)



def R(name: str, defect: str, bug: str, edits: Edits, profile: str | RoutedProfile, kills: Iterable[str]) -> Mutant:
    """A mutant of spec/router.yaml, checked on the slot x router x venue model with a routed profile."""
    routed = ROUTED_PROFILES[profile] if isinstance(profile, str) else profile
    return Mutant(name, defect, bug, tuple(Edit(*e) for e in edits), routed.bounds, frozenset(kills),
                  machine="router", routed=routed)


# Anchors in spec/router.yaml.
REQUOTE_GATE = ("      miss_policy == RETRY and retries_left > 0 and probe_ok and venue_position_lots == 0\n"
                "      and own_fill_age_ms >= hot_window_ms and slot_open_lots == 0\n")
EXIT_ESCALATION = ("    guard: role == EXIT\n    let:\n      rest_lots: target_lots - filled_lots\n    to: TAKER_SENT\n"
                   "    effect:\n      style: TAKER\n      attempt: attempt + 1\n      market_attempts: 1\n"
                   "      attempt_base_lots: filled_lots\n    emit:\n      - SEND_MARKET: {qty_lots: rest_lots}\n"
                   "    doc: An expired or pre-empted")
WITHDRAW_CANCELLED_QUOTE = ("  - from: [MAKER_SENT, MAKER_RESTING]\n    event: WITHDRAW\n    guard: venue_cancelled\n"
                            "    to: WITHDRAWN\n    priority: 1\n")
URGENT_AFTER_VENUE_CANCEL = ('  - from: [MAKER_SENT, MAKER_RESTING]\n'
                             '    event: URGENT_EXIT\n'
                             '    guard: role == EXIT and venue_cancelled\n'
                             '    let:\n'
                             '      rest_lots: target_lots - filled_lots\n'
                             '    to: TAKER_SENT\n'
                             '    effect:\n'
                             '      style: TAKER\n'
                             '      attempt: attempt + 1\n'
                             '      market_attempts: 1\n'
                             '      attempt_base_lots: filled_lots\n'
                             '    emit:\n'
                             '      - SEND_MARKET: {qty_lots: rest_lots}\n'
                             '    priority: 1\n'
                             '    doc: >-\n'
                             '      The venue already cancelled the resting exit: nothing is left to pre-empt and no '
                             'cancel confirmation\n'
                             '      will follow, so go MARKET for the rest at once (no_stranded_exit; found by '
                             'pink-codegen verify,\n'
                             '      slot x router x venue).\n')
STRANDED = {"flat_reachable", "slot_free_reachable", "working_orders_end"}
# Smaller than the shipped routed profiles, still exposing the bug (a stranded router needs the whole search).
ROUTED_TWO_LOTS = RoutedProfile(routed_bounds("router-2-lots"), ExecPlan())
ROUTED_VENUE_CANCEL = RoutedProfile(routed_bounds("router-venue-cancel", venue_cancel_budget=1), ExecPlan())
ROUTED_REJECT = RoutedProfile(routed_bounds("router-reject", reject_budget=1), ExecPlan())

# Router mutants: the execution router's bugs, which only the slot x router x venue composition can see.
ROUTER_MUTANTS: tuple[Mutant, ...] = (
    R("requote_without_venue_gate", "D8", "a missed entry re-quotes with no venue-truth gate at all",
      [(REQUOTE_GATE, "      miss_policy == RETRY and retries_left > 0\n")], "router-lag",
      {"one_entry_exposure", "working_within_target"}),
    R("requote_ignores_hot_window", "D8", "the re-quote gate does not wait out the hot window of an own fill (REST "
      "positions lag the user stream)",
      [(REQUOTE_GATE, "      miss_policy == RETRY and retries_left > 0 and probe_ok and venue_position_lots == 0\n"
                      "      and slot_open_lots == 0\n")], "router-lag",
      {"one_entry_exposure", "working_within_target"}),
    R("requote_ignores_venue_position", "D8", "the re-quote gate does not look at the venue's position",
      [(REQUOTE_GATE, "      miss_policy == RETRY and retries_left > 0 and probe_ok\n"
                      "      and own_fill_age_ms >= hot_window_ms and slot_open_lots == 0\n")], "router-lag",
      {"one_entry_exposure", "working_within_target"}),
    R("exit_ttl_not_escalated", "no_stranded_exit", "an expired maker exit is dropped instead of escalating to "
      "MARKET for the rest",
      [(EXIT_ESCALATION, "    guard: role == EXIT\n    to: SKIPPED\n    doc: An expired or pre-empted")],
      "router-smoke", {"router.exit_is_never_skipped"}),
    R("market_rest_counts_attempt_not_order", "D14", "an escalated attempt's fills are read as the working order's "
      "(the attempt base is not carried), so the router never sees the order complete",
      [("      market_attempts: 1\n      attempt_base_lots: filled_lots\n    emit:\n"
        "      - SEND_MARKET: {qty_lots: rest_lots}\n    doc: An expired or pre-empted",
        "      market_attempts: 1\n    emit:\n      - SEND_MARKET: {qty_lots: rest_lots}\n"
        "    doc: An expired or pre-empted")], ROUTED_TWO_LOTS, STRANDED),
    R("withdraw_waits_for_cancelled_quote", "no_stranded_exit", "withdrawing a quote the venue already cancelled "
      "waits for a cancel confirmation that never comes (found by verify)",
      [(WITHDRAW_CANCELLED_QUOTE, "  - from: [MAKER_SENT, MAKER_RESTING]\n    event: WITHDRAW\n"
                                  "    guard: venue_cancelled\n    to: WITHDRAWING\n    priority: 1\n")],
      ROUTED_VENUE_CANCEL, STRANDED),
    R("late_reject_ignored_while_cancelling", "no_stranded_exit", "a placement refusal reaching the router after "
      "its TTL cancel is ignored, so it waits for a confirmation of an order that never existed (found by verify)",
      [("  - from: CANCELLING\n    event: [CANCELLED, REJECT]\n", "  - from: CANCELLING\n    event: CANCELLED\n",
        3)], ROUTED_REJECT, STRANDED),
    R("urgent_exit_waits_for_cancelled_quote", "no_stranded_exit", "an urgent exit after a venue-side cancel of the "
      "resting exit asks to cancel it again and waits for a confirmation that never comes (found by verify)",
      [(URGENT_AFTER_VENUE_CANCEL, "")], ROUTED_VENUE_CANCEL, STRANDED),
)

# Runtime mutants: procedures of the runtime that no spec declares yet, mirrored by the routed model.
RUNTIME_MUTANTS: tuple[Mutant, ...] = (
    Mutant("recovery_reads_positions_first", "D9", "after a restart, recovery reads positions before open orders: "
           "an order filling between the two reads (its report lost with the old user stream) is in neither",
           (), ROUTED_PROFILES["router-crash"].bounds, frozenset({"one_entry_exposure", "book_matches_position"}),
           machine="runtime", routed=attrs.evolve(ROUTED_PROFILES["router-crash"], positions_first=True)),
    Mutant("recovery_does_not_reanchor_capital", "D5", "after a restart, recovery adopts the venue's position but "
           "does not re-anchor capital to the wallet: what the lost session realised is missing from (or booked "
           "twice into) capital", (), ROUTED_PROFILES["router-crash"].bounds, frozenset({"capital_consistency"}),
           machine="runtime", routed=attrs.evolve(ROUTED_PROFILES["router-crash"], reanchor=False)),
    Mutant("account_accepts_wallet_zero", "D6", "a margin-only account frame (wallet 0) re-anchors capital while "
           "the slot is flat", (), ROUTED_PROFILES["router-smoke"].bounds, frozenset({"capital_consistency"}),
           machine="runtime", routed=attrs.evolve(ROUTED_PROFILES["router-smoke"], accept_wallet_zero=True)),
)

# The finding the `reorder_exit_orders` capability found (docs/verify.md, finding 4), on bounds of its own: the
# `mutants` profile leaves that capability off (with it, its reduce-only venue caps the oversized exit that
# `leg_size_not_capped_at_open` needs).
REORDERED_EXITS = Bounds("reordered-exits", max_lots=2, cancel_budget=1, reject_budget=0, duplicate_budget=0,
                         foreign_budget=0, venue_cancel_budget=0, reorder_after_cancel_budget=1,
                         reorder_exit_orders=True)
LATE_EXIT_MUTANTS: tuple[Mutant, ...] = (
    M("prev_exit_order_never_set", "D3", "an exit order replaced by the next one is forgotten: its fill reported "
      "after its cancel confirmation, once the next exit order is out, is refused as foreign",
      [("      prev_exit_order: exit_order if replaced else prev_exit_order\n",
        "      prev_exit_order: prev_exit_order\n")], REORDERED_EXITS, {"books_match_venue"}),
)

# Plausible bugs verify does not kill yet, each naming the missing invariant or model capability (none today).
SURVIVORS: tuple[Mutant, ...] = ()

KILLED = (*CATALOGUE, *CAPABILITY_MUTANTS, *LATE_EXIT_MUTANTS, *ROUTER_MUTANTS, *RUNTIME_MUTANTS)

# Mutants that no property can tell from the spec (kept out of the count).
EQUIVALENT: tuple[Mutant, ...] = (
    _equivalent(
        "cancelled_part_exit_to_position_open", "state naming", "an exit order cancelled with part of the position "
        "closed goes to POSITION_OPEN instead of PARTIALLY_CLOSED",
        [("    guard: order == exit_order and exited_lots > 0\n    to: PARTIALLY_CLOSED\n",
          "    guard: order == exit_order and exited_lots > 0\n    to: POSITION_OPEN\n")], PARTIAL_CANCEL,
        why_survives="POSITION_OPEN and PARTIALLY_CLOSED are bisimilar in the spec: every row that takes one takes "
                     "the other with the same guard and effect, and no invariant names either; the spec itself books "
                     "a late exit fill in POSITION_OPEN without leaving it, so `POSITION_OPEN implies exited_lots == "
                     "0` is not an invariant to add. Only the state name (audit, UI) differs"),
    _equivalent(
        "entry_duplicate_reported_as_invalid", "D14", "an exact repeat of the entry's last cumulative report is "
        "refused as INVALID_EVENT instead of DUPLICATE_EVENT",
        [("    guard: order != NO_ORDER and order == entry_order and cum_lots <= entry_filled_lots\n",
          "    guard: order != NO_ORDER and order == entry_order and cum_lots < entry_filled_lots\n")], DUPLICATES,
        why_survives="both outcomes leave the book untouched (cumulative booking is idempotent); only the outcome "
                     "label, which the kernel counts, differs, and no property reads outcomes"),
)

# Plausible bugs the spec compiler refuses before verify runs, each with part of the loader's message.
REJECTED_BY_LOADER: tuple[Mutant, ...] = (
    _refused("fee_settlement_priority_dropped", "D14", "the entry fee settlement row loses its priority over the "
             "duplicate row",
             [("    priority: 1\n    doc: The venue settled the entry order's fee;",
               "    doc: The venue settled the entry order's fee;")], ONE_LOT, "overlaps"),
    _refused("exit_open_qty_check_dropped", "D15", "exit fills not checked against the open qty",
             [("      and exited_lots + (cum_lots - exit_filled_lots) < entry_filled_lots\n", "\n", 3)], ONE_LOT,
             "overlaps"),
    _refused("entry_duplicate_guard_dropped", "D14", "entry fills not required to advance the cumulative lots",
             [("order == entry_order and order != NO_ORDER and cum_lots > entry_filled_lots\n",
               "order == entry_order and order != NO_ORDER\n", 2)], ONE_LOT, "overlaps"),
    _refused("exit_fills_routed_by_state", "D3", "exit rows book any fill in an exit state (order identity dropped)",
             [(EXIT_IDENTITY, "cum_lots > exit_filled_lots", 4)], ONE_LOT, "overlaps"),
    _refused("closed_frees_slot_before_record", "D12", "the closing fill frees the slot at once "
             "(TRADE_TERMINAL_WRITTEN before the record is durable)",
             [("    to: CLOSED\n    doc: The last open lots closed",
               "    to: TRADE_TERMINAL_WRITTEN\n    doc: The last open lots closed"),
              ("    to: CLOSED\n    doc: >-\n      A late report of the previous exit order",
               "    to: TRADE_TERMINAL_WRITTEN\n    doc: >-\n      A late report of the previous exit order")], ONE_LOT,
             "unreachable"),
)

# Every mutant, in the order the kill matrix runs and prints them.
MUTANTS: tuple[Mutant, ...] = (*KILLED, *SURVIVORS, *EQUIVALENT, *REJECTED_BY_LOADER)
BY_NAME: dict[str, Mutant] = {m.name: m for m in MUTANTS}


@attrs.frozen
class MutantResult:
    """What verify said about one mutant. `expected` is whether that is what the catalogue says it should be: killed
    by one of the mutant's `kills`, refused with its `refused_with` message, or (equivalent) no violation in a
    complete search. JSON-able (`to_json` / `from_json`), so test workers and `--json` share it."""

    name: str
    defect: str
    bug: str
    status: Status
    expected: bool
    expect: Expect = "killed"  # what the catalogue claims the mutant does
    invariant: str = ""  # the first violated property ("" unless killed)
    expected_invariants: tuple[str, ...] = ()
    catalogue: str = ""  # the invariant catalogue entry the violated property belongs to
    verdict: str = ""  # the property's verdict ("VIOLATED" when killed)
    detail: str = ""  # the violation's detail, the compiler's message, the stale edit, or why it survived
    trace: tuple[tuple[str, str, str], ...] = ()  # the shortest counterexample: (action, slot state after, outcome)
    states: int = 0
    complete: bool = False
    seconds: float = 0.0  # wall time: applying the edits, compiling the mutated spec and the search
    bounds: str = ""
    engine: str = ""  # the engine that ran ("fast" or "reference"); "" when nothing was checked

    @property
    def trace_steps(self) -> int:
        return len(self.trace)

    @property
    def ok(self) -> bool:
        """The catalogue's claim holds: a killed mutant by an expected invariant, an equivalent one confirmed, a
        refused one with the expected message. Survivors and stale mutants are never ok."""
        return self.status in ("killed", "equivalent", "refused") and self.expected

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["expected_invariants"] = list(self.expected_invariants)
        data["trace"] = [{"action": a, "slot_state": s, "outcome": o} for a, s, o in self.trace]
        data["trace_steps"] = self.trace_steps
        data["ok"] = self.ok
        data["seconds"] = round(self.seconds, 3)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MutantResult:
        fields = {f.name for f in attrs.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["expected_invariants"] = tuple(values.get("expected_invariants", ()))
        values["trace"] = tuple((t["action"], t["slot_state"], t["outcome"]) for t in values.get("trace", ()))
        return cls(**values)


def run_mutant(mutant: Mutant, slot_text: str, engine: str = "auto", max_states: int = 2_000_000,
               router_text: str | None = None) -> MutantResult:
    """Apply `mutant` to its machine's spec text in memory, compile it and model-check it on the mutant's bounds:
    a slot mutant on the slot x venue model, a router mutant (`router_text` needed) on the slot x router x venue
    model.

    The engine is chosen as `pink-codegen verify` chooses it (`run_check`; "auto": the fast engine when it encodes
    the model, else the reference), so the small-bounds mutants run fast. Never raises for a stale or refused
    mutant: those are statuses of the result. FastUnsupported propagates only with `engine="fast"`."""
    from pink_codegen.verify.fast import run_check

    started = time.perf_counter()
    base = MutantResult(mutant.name, mutant.defect, mutant.bug, "stale", False, mutant.expect,
                        expected_invariants=tuple(sorted(mutant.kills)), bounds=mutant.bounds.name)
    spec_text = router_text if mutant.machine == "router" else slot_text
    if spec_text is None or (mutant.routed is not None and router_text is None):
        return attrs.evolve(base, detail=f"mutant {mutant.name} is stale: it needs the spec dir's router.yaml")
    try:
        text = mutant.apply(spec_text)
    except StaleMutant as exc:
        return attrs.evolve(base, detail=str(exc), seconds=time.perf_counter() - started)
    try:
        mutated = load_machine_text(text, "router.yaml" if mutant.machine == "router" else "slot.yaml")
        model: ComposedModel
        if mutant.routed is not None:
            assert router_text is not None
            slot = mutated if mutant.machine != "router" else load_machine_text(slot_text, "slot.yaml")
            router = mutated if mutant.machine == "router" else load_machine_text(router_text, "router.yaml")
            model = RoutedModel(slot, router, mutant.routed)
        else:
            model = ComposedModel(mutated, mutant.bounds)
    except SpecError as exc:
        expected = mutant.expect == "refused" and mutant.refused_with in str(exc)
        return attrs.evolve(base, status="refused", expected=expected, detail=str(exc),
                            seconds=time.perf_counter() - started)
    try:
        result, ran, _ = run_check(model, engine, max_states=max_states)
    except Exception as exc:  # a checker failure is not a verdict: let it out, saying which mutant met it
        exc.add_note(f"while model-checking mutant {mutant.name} (bounds {mutant.bounds.name})")
        raise
    seconds = time.perf_counter() - started
    checked = attrs.evolve(base, states=result.states, complete=result.complete, seconds=seconds, engine=ran)
    if result.violations:
        v = result.violations[0]
        return attrs.evolve(checked, status="killed", expected=v.invariant in mutant.kills, invariant=v.invariant,
                            catalogue=v.catalogue, verdict=result.verdicts[v.invariant], detail=v.detail,
                            trace=v.trace)
    if mutant.expect == "equivalent" and result.complete:
        return attrs.evolve(checked, status="equivalent", expected=True, detail=mutant.why_survives)
    why = mutant.why_survives or "no property is violated: a missing invariant (add it) or an equivalent mutant " \
                                 "(explain it)"
    if not result.complete:
        why = f"the search stopped at {result.states:,} states without a violation (raise max_states); {why}"
    return attrs.evolve(checked, status="survived", expected=mutant.expect == "survives", detail=why)


def unknown_names(names: Iterable[str]) -> list[tuple[str, list[str]]]:
    """The names that are not in the catalogue, each with the closest catalogued names (a did-you-mean)."""
    return [(n, difflib.get_close_matches(n, BY_NAME, n=3, cutoff=0.5)) for n in names if n not in BY_NAME]


def kill_matrix(slot_text: str, names: Sequence[str] | None = None,
                progress: Callable[[int, int, str], None] | None = None, engine: str = "auto",
                max_states: int = 2_000_000, router_text: str | None = None) -> list[MutantResult]:
    """Run every mutant (or those named, in catalogue order) against `slot_text` (and `router_text`, which the
    router mutants mutate and every routed check composes; without it they are stale). `progress(done, total, name)` is
    called before each mutant with the name about to run, and once more at the end with name "". Raises KeyError
    for a name not in the catalogue (check with `unknown_names` first)."""
    if names is not None:
        missing = unknown_names(names)
        if missing:
            raise KeyError(", ".join(n for n, _ in missing))
        wanted = set(names)
        chosen = [m for m in MUTANTS if m.name in wanted]
    else:
        chosen = list(MUTANTS)
    results: list[MutantResult] = []
    for i, m in enumerate(chosen):
        if progress is not None:
            progress(i, len(chosen), m.name)
        results.append(run_mutant(m, slot_text, engine=engine, max_states=max_states, router_text=router_text))
    if progress is not None:
        progress(len(chosen), len(chosen), "")
    return results


def summary(results: Sequence[MutantResult]) -> dict[str, Any]:
    """Counts per status, how many kills were by an expected invariant, the total seconds, and `ok`: every result
    is what the catalogue claims (see `MutantResult.ok`)."""
    counts: dict[str, Any] = {s: sum(r.status == s for r in results) for s in STATUSES}
    counts["killed_as_expected"] = sum(r.status == "killed" and r.expected for r in results)
    counts["total"] = len(results)
    counts["seconds"] = round(sum(r.seconds for r in results), 3)
    counts["ok"] = all(r.ok for r in results)
    return counts


__all__ = [
    "BY_NAME",
    "CAPABILITY_MUTANTS",
    "CATALOGUE",
    "EQUIVALENT",
    "KILLED",
    "MUTANTS",
    "REJECTED_BY_LOADER",
    "ROUTER_MUTANTS",
    "STATUSES",
    "SURVIVORS",
    "Edit",
    "Mutant",
    "MutantResult",
    "StaleMutant",
    "kill_matrix",
    "run_mutant",
    "summary",
    "unknown_names",
]
