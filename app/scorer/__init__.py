"""The learnt scorer of each schema: versions, background refits."""
