"""The pure quality engine: rules and checks as frozen dataclasses and plain functions.

No ORM here. `quality.rulesets` maps stored rows into `RuleSpec`s once per rule-set version;
`quality.selectors` gathers the counts the check functions judge.
"""
