"""Every ORM model, imported once so `Base.metadata` is complete (for Alembic and tests)."""

from app.auth.models import ApiKey, Project
from app.calibration.models import CalibratorVersion, SchemaPrior
from app.datasets.models import Dataset, DatasetItem
from app.db import Base
from app.items.models import Item
from app.jobs.models import Job, JobChunk
from app.judges.models import TrainedJudge
from app.label_schemas.models import LabelSchema, SchemaVersion
from app.label_studio.models import LabelStudioAnnotation
from app.labelling.models import Annotation, Exemplar, ItemState
from app.review_page.models import PageSession
from app.scorer.models import ItemVector, ScorerVersion

__all__ = [
    "Annotation", "ApiKey", "Base", "CalibratorVersion", "Dataset", "DatasetItem", "Exemplar",
    "Item", "ItemState", "ItemVector", "Job", "JobChunk", "LabelSchema", "LabelStudioAnnotation",
    "PageSession", "Project", "SchemaPrior", "SchemaVersion", "ScorerVersion", "TrainedJudge",
]
