"""Training building blocks shared by the tagger and detector recipes (mmengine Runner)."""
