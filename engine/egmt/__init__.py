"""EGMT: entity-guided multi-task infrared/visible fusion (see docs/egmt_model_card.md)."""
