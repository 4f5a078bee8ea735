"""`pink-codegen explain NAME`: what can happen in a state, or what an event does, in plain words."""

from __future__ import annotations

from pink_codegen import expr as X
from pink_codegen.errors import did_you_mean
from pink_codegen.ir import Machine, Transition


def _row(t: Transition, source: str | None = None) -> str:
    guard = f" if {t.guard_text}" if t.guard is not None else ""
    dest = t.dest_from(source) if source else t.dest_text
    stay = " (stays)" if source and dest == source else ""
    outcome = f", outcome {t.outcome}" if t.outcome != "OK" else ""
    prio = f", priority {t.priority}" if t.priority else ""
    lines = [f"  #{t.index} {t.event}{guard} -> {dest}{stay}{outcome}{prio}   [{t.pos}]", f"      why: {t.doc}"]
    if t.effect:
        lines.append("      sets: " + "; ".join(f"{n} := {X.render(e)}" for n, e in t.effect))
    if t.emits:
        lines.append("      emits: " + ", ".join(em.output for em in t.emits))
    return "\n".join(lines)


def explain_state(m: Machine, name: str) -> str:
    s = m.state(name)
    out = [f"{m.name}: state {name}{' (initial)' if name == m.initial else ''}{' (final)' if s.final else ''}",
           f"  {s.doc}"]
    if s.was:
        out.append(f"  reference runtime name: {s.was}")
    incoming = [t for t in m.transitions if any(t.dest_from(src) == name and src != name for src in t.sources)]
    if incoming:
        out.append("entered by:")
        out.extend(f"  #{t.index} {t.source_text} --{t.event}-->" for t in incoming)
    out.append("in this state, rows are tried in this order per event:")
    for e in m.events:
        rows = m.transitions_for(name, e.name)
        if rows:
            out.extend(_row(t, name) for t in rows)
        elif e.kind in ("command", "audit", "clock"):
            out.append(f"  {e.name}: not handled here (the machine raises UnhandledEvent)")
    mentions = [inv for inv in m.invariants if name in X.render(inv.expr)]
    if mentions:
        out.append("invariants that mention it:")
        out.extend(f"  {inv.name} ({inv.catalogue}): {X.render(inv.expr)}" for inv in mentions)
    return "\n".join(out)


def explain_event(m: Machine, name: str) -> str:
    e = m.event(name)
    params = ", ".join(f"{p.name}: {p.type}" for p in e.params) or "no parameters"
    out = [f"{m.name}: event {name} ({e.kind}; {params})", f"  {e.doc}"]
    for s in m.states:
        rows = m.transitions_for(s.name, name)
        if rows:
            out.append(f"in {s.name}:")
            out.extend(_row(t, s.name) for t in rows)
        elif not s.final:
            out.append(f"in {s.name}: not handled")
    return "\n".join(out)


def explain(machines: list[Machine], name: str) -> str:
    """Explain `name` as a state or event of every machine that has it; ValueError if none does."""
    parts: list[str] = []
    for m in machines:
        if name in {s.name for s in m.states}:
            parts.append(explain_state(m, name))
        if name in {e.name for e in m.events}:
            parts.append(explain_event(m, name))
    if not parts:
        known = [s.name for m in machines for s in m.states] + [e.name for m in machines for e in m.events]
        raise ValueError(f"'{name}' is not a state or event of {', '.join(m.name for m in machines)}"
                         f"{did_you_mean(name, known)}")
    return "\n\n".join(parts)
