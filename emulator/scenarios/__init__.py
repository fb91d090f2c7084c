"""Scenarios: the YAML (or JSON) format for timing profiles and fault rules, loaded and
validated in one place. The format is documented in scenarios/README.md.

Every problem is reported as `SOURCE:LINE: message`, so a typo is caught before the server
starts or a PUT is taken. The package is split by job, and this module is the one import
path callers use:

  model.py     the format's keys and the values the emulator runs on (Scenario, Rule, ...)
  loading.py   where a scenario comes from: shipped name, file, inline text, request body
  reader.py    a scenario's YAML nodes → a validated Scenario, collecting every problem
  nodes.py     typed reads of YAML nodes (text, numbers, durations, globs, known keys)
  problems.py  Problem (SOURCE:LINE: message) and ScenarioError, which carries them all
"""

from __future__ import annotations

from emulator.errors import ConfigError
from emulator.scenarios.loading import (
    is_inline,
    listing,
    load,
    load_file,
    load_request,
    load_shipped,
    parse,
    shipped_dir,
    shipped_names,
    validate_files,
)
from emulator.scenarios.model import (
    ASSET_ONLY_KEYS,
    DEFAULT_SCENARIO,
    HTTP_EFFECTS,
    HTTP_METHODS,
    HTTP_ONLY_KEYS,
    MATCH_KEYS,
    RULE_KEYS,
    TIMELINE_KEYS,
    TOP_KEYS,
    WEBHOOK_ONLY_KEYS,
    Match,
    Respond,
    Rule,
    Scenario,
)
from emulator.scenarios.problems import Problem, ScenarioError

__all__ = [
    "ASSET_ONLY_KEYS",
    "DEFAULT_SCENARIO",
    "HTTP_EFFECTS",
    "HTTP_METHODS",
    "HTTP_ONLY_KEYS",
    "MATCH_KEYS",
    "RULE_KEYS",
    "TIMELINE_KEYS",
    "TOP_KEYS",
    "WEBHOOK_ONLY_KEYS",
    "ConfigError",  # what load() raises for a name that is neither a file nor shipped
    "Match",
    "Problem",
    "Respond",
    "Rule",
    "Scenario",
    "ScenarioError",
    "is_inline",
    "listing",
    "load",
    "load_file",
    "load_request",
    "load_shipped",
    "parse",
    "shipped_dir",
    "shipped_names",
    "validate_files",
]
