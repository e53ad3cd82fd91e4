from __future__ import annotations

from fastapi import APIRouter, Query

from app.calibration import repository, service
from app.calibration.api import CalibrationOut, CutoffOut
from app.calibration.models import CalibratorVersion
from app.deps import Admin, RuntimeDep, SessionDep, Viewer
from app.label_schemas import repository as schemas
from app.label_schemas.models import LabelSchema
from app.rac.calibration import FEATURES

router = APIRouter(prefix="/v1/schemas", tags=["calibration"])


def _out(schema: LabelSchema, row: CalibratorVersion | None) -> CalibrationOut:
    if row is None:
        return CalibrationOut(schema_name=schema.name, version=0, fitted=False, n_reviews=0,
                              ece_before=None, ece_after=None, features=list(FEATURES),
                              created_at=None)
    return CalibrationOut(schema_name=schema.name, version=row.version,
                          fitted=bool(row.params.get("weights")), n_reviews=row.n_reviews,
                          ece_before=row.ece_before, ece_after=row.ece_after,
                          features=list(FEATURES), created_at=row.created_at)


@router.get("/{name}/calibration", response_model=CalibrationOut, response_model_by_alias=True)
def get_calibration(name: str, principal: Viewer, session: SessionDep) -> CalibrationOut:
    """The calibrator that scores new decisions, and how well calibrated it is."""
    schema = schemas.get_schema(session, principal.project_id, name)
    return _out(schema, repository.latest(session, schema.id))


@router.post("/{name}/calibration", response_model=CalibrationOut, response_model_by_alias=True)
def refit_calibration(name: str, principal: Admin, session: SessionDep,
                      runtime: RuntimeDep) -> CalibrationOut:
    """Fit a new calibrator version from every review now (it is also refitted automatically
    as reviews arrive)."""
    schema = schemas.get_schema(session, principal.project_id, name)
    return _out(schema, service.refit(session, runtime, schema))


@router.get("/{name}/cutoff", response_model=CutoffOut, response_model_by_alias=True)
def cutoff(name: str, principal: Viewer, session: SessionDep, runtime: RuntimeDep,
           precision: float = Query(ge=0.5, le=0.999, description="The precision wanted."),
           ) -> CutoffOut:
    """The cutoff that gives `precision` on this schema's reviewed decisions, the coverage to
    expect at it, and a 95% interval for the precision — or, plainly, that there are too few
    reviews to promise it."""
    schema = schemas.get_schema(session, principal.project_id, name)
    answer = service.cutoff_for(session, schema, precision, runtime)
    c = answer.choice
    return CutoffOut(schema_name=schema.name, target_precision=precision, cutoff=c.cutoff,
                     precision=c.precision, precision_interval=c.interval, promised=c.promised,
                     support=c.support, expected_coverage=answer.expected_coverage,
                     calibrator_version=answer.calibrator_version, reason=c.reason)
