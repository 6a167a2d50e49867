"""The risk service's use cases, one module per aggregate: signals, assessments, rulesets."""
