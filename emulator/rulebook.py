"""Which scenario is in force for whom, and when its fault rules fire. No I/O.

The server starts with a default scenario (--scenario); PUT /_emulator/scenario replaces
it for everyone (global) or for one tenant. Each tenant keeps its own rule counters (nth,
times) and its own seeded random draws (probability), started afresh whenever the
scenario in force for it changes or its data is reset. So a test on its own API key sees
the same outcomes for the same requests, run after run, whatever other tests sharing the
server do.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from emulator.models import WebhookFault
from emulator.scenarios import Rule, Scenario
from emulator.timeline import ProcessingFault


class _Tally:
    """One tenant's counts and draws for the rules of one scenario."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        count = len(scenario.faults)
        self.matched = [0] * count
        self.fired = [0] * count
        # One stream per rule, seeded by scenario seed and rule position only (never by the
        # tenant), so two runs with fresh keys draw the same numbers.
        self.draws = [random.Random(f"{scenario.seed}:{i}") for i in range(count)]


class Rulebook:
    def __init__(self, default: Scenario) -> None:
        self.default = default
        self._global: Scenario | None = None
        self._tenants: dict[str, Scenario] = {}
        self._tallies: dict[str | None, _Tally] = {}
        self._http = bool(default.rules("http"))

    @property
    def may_fault_http(self) -> bool:
        """Whether any scenario in force has HTTP rules; if not, requests skip the lookups."""
        return self._http

    def _changed(self) -> None:
        in_force = [self.default, *self._tenants.values()]
        if self._global is not None:
            in_force.append(self._global)
        self._http = any(scenario.rules("http") for scenario in in_force)

    # -- which scenario -------------------------------------------------------------------

    def in_force(self, tenant: str | None) -> tuple[Scenario, str]:
        """The caller's scenario and where it comes from: "tenant", "global" or "default"."""
        if tenant is not None and tenant in self._tenants:
            return self._tenants[tenant], "tenant"
        if self._global is not None:
            return self._global, "global"
        return self.default, "default"

    def scenario_for(self, tenant: str | None) -> Scenario:
        return self.in_force(tenant)[0]

    def use(self, scenario: Scenario, tenant: str | None) -> None:
        """Put `scenario` in force for one tenant, or (tenant None) for everyone."""
        if tenant is None:
            self._global = scenario
        else:
            self._tenants[tenant] = scenario
        self._changed()

    def drop(self, tenant: str | None) -> None:
        """Remove a tenant's own scenario, or (None) the global one: back to the default."""
        if tenant is None:
            self._global = None
        else:
            self._tenants.pop(tenant, None)
        self._changed()

    def forget(self, tenant: str | None) -> None:
        """Start a tenant's counters afresh (None: everyone's), as when its data is reset."""
        if tenant is None:
            self._tallies.clear()
        else:
            self._tallies.pop(tenant, None)

    # -- which rules fire -----------------------------------------------------------------

    def http_faults(self, tenant: str | None, method: str, path: str) -> list[Rule]:
        """The HTTP rules that fire for a request, in order, up to the first that answers it."""
        fired = []
        for rule in self._firing(tenant, "http", method=method, path=path):
            fired.append(rule)
            if rule.answers:
                break
        return fired

    def processing_fault(
        self, tenant: str, asset_name: str | None, source_url: str | None
    ) -> ProcessingFault | None:
        firing = self._firing(tenant, "processing", asset_name=asset_name, source_url=source_url)
        rule = next(firing, None)
        return rule.processing if rule is not None else None

    def import_error(self, tenant: str, asset_name: str | None, source_url: str) -> str | None:
        firing = self._firing(tenant, "import", asset_name=asset_name, source_url=source_url)
        rule = next(firing, None)
        return rule.import_error if rule is not None else None

    def export_fault(
        self, tenant: str, asset_name: str | None, source_url: str | None
    ) -> ProcessingFault | None:
        """How the asset's IPFS export task goes wrong (a scenario's `export:` rule)."""
        firing = self._firing(tenant, "export", asset_name=asset_name, source_url=source_url)
        rule = next(firing, None)
        return rule.export if rule is not None else None

    def webhook_faults(self, tenant: str, event: str, webhook_url: str) -> list[WebhookFault]:
        """What the scenario does to one delivery of `event` to a webhook (every rule that
        fires: a delivery may be both delayed and duplicated)."""
        firing = self._firing(tenant, "webhook", event=event, webhook_url=webhook_url)
        return [rule.webhook for rule in firing if rule.webhook is not None]

    def _firing(self, tenant: str | None, kind: str, **facts: str | None) -> Iterator[Rule]:
        """Rules of `kind` that fire, in order; each is counted only when it is reached, so
        a caller that stops at the first leaves later rules' counters alone."""
        scenario = self.scenario_for(tenant)
        tally = self._tallies.get(tenant)
        if tally is None or tally.scenario is not scenario:
            tally = self._tallies[tenant] = _Tally(scenario)
        for i, rule in enumerate(scenario.faults):
            if rule.kind != kind or not rule.match.selects(tenant, **facts):
                continue
            tally.matched[i] += 1
            match = rule.match
            if match.nth and tally.matched[i] not in match.nth:
                continue
            if match.probability is not None and tally.draws[i].random() >= match.probability:
                continue
            if match.times is not None and tally.fired[i] >= match.times:
                continue
            tally.fired[i] += 1
            yield rule
